//! The providers' HTTP transport: hyper-util's pooled client, rustls with Mozilla's roots
//! for https (HTTP/2 when the server offers it).
//!
//! Why not reqwest: it wraps this same client in redirect, retry and URL-reparsing layers
//! that cost ~35 µs of CPU per upstream call in the gateway benchmark (BENCHMARKS.md §2),
//! more than everything else a pass-through request does. Providers need none of them:
//! model APIs do not redirect and retries are our own policy (`retry.rs`).

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use futures::stream::BoxStream;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};
use hyper::{Request, StatusCode, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use tokio::time::Instant;

use super::retry::parse_retry_after;
use super::ProviderError;

/// What one upstream call may make the gateway hold in memory. An upstream is untrusted:
/// without these, a huge body, error page or SSE event grows the gateway by its size.
pub(crate) mod limits {
    /// A whole JSON answer.
    pub const BODY_BYTES: usize = 16 << 20;
    /// The part of a non-2xx body that is read (its first 500 characters are kept).
    pub const ERROR_BODY_BYTES: usize = 64 << 10;
    /// One server-sent event (the parser buffers an event until its blank line).
    pub const SSE_EVENT_BYTES: usize = 1 << 20;
    /// The text of one streamed answer, summed over its deltas.
    pub const STREAM_TEXT_BYTES: usize = 16 << 20;
    /// A whole embeddings reply: 2048 vectors of 3072 dimensions take ~34 MiB as base64
    /// (what OpenAI's clients ask for), more as JSON numbers; what is parsed out of it
    /// is capped on its own (`embeddings::MAX_VALUES`).
    pub const EMBEDDINGS_BODY_BYTES: usize = 64 << 20;
}

/// One pooled client per provider, with the headers its config adds to every request.
pub(crate) struct HttpClient {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    headers: HeaderMap,
}

impl HttpClient {
    /// Keep-alive connections (idle ones closed after 90 s), no Nagle delay.
    pub fn new(
        connect_timeout: Duration,
        headers: &BTreeMap<String, String>,
    ) -> Result<Self, ProviderError> {
        let mut default_headers = HeaderMap::new();
        for (k, v) in headers {
            let name = HeaderName::from_bytes(k.as_bytes())
                .map_err(|e| ProviderError::Config(format!("header name `{k}`: {e}")))?;
            let value = HeaderValue::from_str(v)
                .map_err(|e| ProviderError::Config(format!("header `{k}`: {e}")))?;
            default_headers.insert(name, value);
        }
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(connect_timeout));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
            .map_err(|e| ProviderError::Config(format!("TLS: {e}")))?
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(256)
            .build(https);
        Ok(HttpClient {
            client,
            headers: default_headers,
        })
    }

    /// POSTs a JSON body. `timeout` bounds the whole exchange: connecting, the response's
    /// head here, and its body in [`Response::bytes`] / [`Response::into_stream`]. A non-2xx
    /// answer is `ProviderError::Http` with the start of its body and its `Retry-After`.
    pub async fn post_json(
        &self,
        uri: &Uri,
        headers: &[(HeaderName, HeaderValue)],
        body: Vec<u8>,
        timeout: Duration,
    ) -> Result<Response, ProviderError> {
        let deadline = Instant::now() + timeout;
        let mut request = Request::post(uri.clone())
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| ProviderError::Config(format!("request to {uri}: {e}")))?;
        let h = request.headers_mut();
        h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        for (k, v) in &self.headers {
            h.insert(k, v.clone());
        }
        for (k, v) in headers {
            h.insert(k, v.clone());
        }
        let response = match tokio::time::timeout_at(deadline, self.client.request(request)).await {
            Err(_) => return Err(ProviderError::Timeout(timeout)),
            // Only a failed connect is known not to have sent the request.
            Ok(Err(e)) if e.is_connect() => return Err(ProviderError::Connect(describe(&e))),
            Ok(Err(e)) => return Err(ProviderError::Interrupted(describe(&e))),
            Ok(Ok(r)) => r,
        };
        let response = Response {
            inner: response,
            deadline,
            timeout,
        };
        if !response.status().is_success() {
            return Err(response.into_status_error().await);
        }
        Ok(response)
    }
}

/// An upstream response whose body must arrive before the request's deadline.
#[derive(Debug)]
pub(crate) struct Response {
    inner: hyper::Response<Incoming>,
    deadline: Instant,
    timeout: Duration,
}

impl Response {
    pub fn status(&self) -> StatusCode {
        self.inner.status()
    }

    /// The whole body, refused past [`limits::BODY_BYTES`] before it is all held.
    pub async fn bytes(self) -> Result<Bytes, ProviderError> {
        self.bytes_limited(limits::BODY_BYTES).await
    }

    pub async fn bytes_limited(self, limit: usize) -> Result<Bytes, ProviderError> {
        let collect = http_body_util::Limited::new(self.inner.into_body(), limit).collect();
        match tokio::time::timeout_at(self.deadline, collect).await {
            Err(_) => Err(ProviderError::Timeout(self.timeout)),
            Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(
                ProviderError::TooLarge(format!("the body exceeds {limit} bytes")),
            ),
            Ok(Err(e)) => Err(ProviderError::Malformed(format!(
                "reading the response body: {}",
                describe(&*e)
            ))),
            Ok(Ok(b)) => Ok(b.to_bytes()),
        }
    }

    /// The first `limit` bytes of the body (an error page: only its start is shown).
    async fn head_of_body(self, limit: usize) -> Bytes {
        let (deadline, mut body) = (self.deadline, self.inner.into_body());
        let mut out = bytes::BytesMut::new();
        while out.len() < limit {
            match tokio::time::timeout_at(deadline, body.frame()).await {
                Ok(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        let take = data.len().min(limit - out.len());
                        out.extend_from_slice(&data[..take]);
                    }
                }
                _ => break,
            }
        }
        out.freeze()
    }

    /// The body's data as it arrives; a timeout or transport error is the last item.
    pub fn into_stream(self) -> BoxStream<'static, Result<Bytes, ProviderError>> {
        let state = Some((self.inner.into_body(), self.deadline, self.timeout));
        let stream = futures::stream::unfold(state, |state| async move {
            let (mut body, deadline, timeout) = state?;
            loop {
                match tokio::time::timeout_at(deadline, body.frame()).await {
                    Err(_) => return Some((Err(ProviderError::Timeout(timeout)), None)),
                    Ok(None) => return None,
                    Ok(Some(Err(e))) => {
                        let e =
                            ProviderError::Stream(format!("reading the stream: {}", describe(&e)));
                        return Some((Err(e), None));
                    }
                    Ok(Some(Ok(frame))) => {
                        // Trailers carry no data: read on.
                        if let Ok(data) = frame.into_data() {
                            return Some((Ok(data), Some((body, deadline, timeout))));
                        }
                    }
                }
            }
        });
        Box::pin(stream)
    }

    async fn into_status_error(self) -> ProviderError {
        let status = self.status().as_u16();
        let retry_after = self
            .inner
            .headers()
            .get(hyper::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        let body = self.head_of_body(limits::ERROR_BODY_BYTES).await;
        let body: String = String::from_utf8_lossy(&body).chars().take(500).collect();
        // It reaches the tenant and the trace: an upstream may quote a credential back.
        let body = crate::scrub::scrub(&body);
        ProviderError::Http {
            status,
            body,
            retry_after,
        }
    }
}

/// An error with its causes: hyper's own messages ("client error (Connect)") say little.
fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

/// `base_url` + `path` as a URI, or a configuration error naming the bad value.
pub(crate) fn endpoint(base_url: &str, path: &str) -> Result<Uri, ProviderError> {
    let url = format!("{}{path}", base_url.trim_end_matches('/'));
    let uri: Uri = url
        .parse()
        .map_err(|e| ProviderError::Config(format!("base_url `{base_url}`: {e}")))?;
    match uri.scheme_str() {
        Some("http" | "https") if uri.host().is_some_and(|h| !h.is_empty()) => Ok(uri),
        Some("http" | "https") => Err(ProviderError::Config(format!(
            "base_url `{base_url}`: no host"
        ))),
        _ => Err(ProviderError::Config(format!(
            "base_url `{base_url}`: the scheme must be http or https"
        ))),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    #[test]
    fn endpoints_are_checked_at_load_time() {
        let uri = endpoint("http://127.0.0.1:8080/v1/", "/chat/completions").unwrap();
        assert_eq!(uri.to_string(), "http://127.0.0.1:8080/v1/chat/completions");
        let uri = endpoint("https://api.anthropic.com", "/v1/messages").unwrap();
        assert_eq!(uri.to_string(), "https://api.anthropic.com/v1/messages");
        for bad in [
            "127.0.0.1:8080/v1",
            "ftp://example.com/v1",
            "http://exa mple.com",
            "http:///v1",
            "not a url",
        ] {
            let err = endpoint(bad, "/chat/completions").unwrap_err();
            assert!(
                matches!(&err, ProviderError::Config(m) if m.contains(bad)),
                "{bad}: {err:?}"
            );
        }
    }

    #[test]
    fn bad_config_headers_are_config_errors() {
        let mut headers = BTreeMap::new();
        headers.insert("bad header".to_string(), "x".to_string());
        assert!(matches!(
            HttpClient::new(Duration::from_secs(1), &headers),
            Err(ProviderError::Config(_))
        ));
        headers.clear();
        headers.insert("x-ok".to_string(), "line\nbreak".to_string());
        assert!(matches!(
            HttpClient::new(Duration::from_secs(1), &headers),
            Err(ProviderError::Config(_))
        ));
    }

    async fn serve_once(reply: &'static [u8]) -> Uri {
        serve_bytes(reply.to_vec()).await
    }

    /// A one-connection server that answers every request with `reply` and then holds
    /// the connection open (so a short body stalls instead of ending).
    pub(crate) async fn serve_bytes(reply: Vec<u8>) -> Uri {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buf = vec![0u8; 4096];
            let _ = socket.read(&mut buf).await;
            // The client may stop reading (and close) before the whole reply is written.
            let _ = socket.write_all(&reply).await;
            tokio::time::sleep(Duration::from_secs(30)).await;
        });
        format!("http://{addr}/v1/chat/completions")
            .parse()
            .unwrap()
    }

    fn with_body(head: &str, body_len: usize) -> Vec<u8> {
        let mut reply = format!("{head}\r\ncontent-length: {body_len}\r\n\r\n").into_bytes();
        reply.resize(reply.len() + body_len, b'a');
        reply
    }

    #[tokio::test]
    async fn a_body_over_the_limit_is_refused_before_it_is_held() {
        let uri = serve_bytes(with_body("HTTP/1.1 200 OK", limits::BODY_BYTES + 1)).await;
        let response = client()
            .post_json(&uri, &[], b"{}".to_vec(), Duration::from_secs(10))
            .await
            .unwrap();
        let err = response.bytes().await.unwrap_err();
        assert!(matches!(err, ProviderError::TooLarge(_)), "{err:?}");
        assert_eq!(err.code(), "upstream_response_too_large");
        let uri = serve_bytes(with_body("HTTP/1.1 200 OK", limits::BODY_BYTES)).await;
        let response = client()
            .post_json(&uri, &[], b"{}".to_vec(), Duration::from_secs(10))
            .await
            .unwrap();
        assert_eq!(response.bytes().await.unwrap().len(), limits::BODY_BYTES);
    }

    #[tokio::test]
    async fn only_the_start_of_a_huge_error_body_is_read() {
        // 64 MiB announced, and the server never finishes: the error comes back anyway.
        let mut reply = with_body("HTTP/1.1 503 Unavailable", 64 << 20);
        reply.truncate(reply.len() - (60 << 20));
        let uri = serve_bytes(reply).await;
        let started = std::time::Instant::now();
        let err = client()
            .post_json(&uri, &[], b"{}".to_vec(), Duration::from_secs(20))
            .await
            .unwrap_err();
        match err {
            ProviderError::Http { status, body, .. } => {
                assert_eq!(status, 503);
                assert_eq!(body.len(), 500);
            }
            other => panic!("{other:?}"),
        }
        assert!(started.elapsed() < Duration::from_secs(15));
    }

    fn client() -> HttpClient {
        HttpClient::new(Duration::from_secs(2), &BTreeMap::new()).unwrap()
    }

    #[tokio::test]
    async fn a_body_that_stalls_after_the_head_times_out() {
        let uri = serve_once(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{\"partial\":").await;
        let timeout = Duration::from_millis(300);
        let response = client()
            .post_json(&uri, &[], b"{}".to_vec(), timeout)
            .await
            .unwrap();
        let started = std::time::Instant::now();
        let err = response.bytes().await.unwrap_err();
        assert!(
            matches!(err, ProviderError::Timeout(t) if t == timeout),
            "{err:?}"
        );
        assert!(started.elapsed() < Duration::from_secs(5));
    }

    #[tokio::test]
    async fn a_stream_that_stalls_ends_with_a_timeout() {
        use futures::StreamExt;
        let uri =
            serve_once(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\ndata:\r\n")
                .await;
        let timeout = Duration::from_millis(300);
        let response = client()
            .post_json(&uri, &[], b"{}".to_vec(), timeout)
            .await
            .unwrap();
        let items: Vec<_> = response.into_stream().collect().await;
        assert_eq!(items.len(), 2, "{items:?}");
        assert_eq!(items[0].as_ref().unwrap().as_ref(), b"data:");
        assert!(
            matches!(items[1], Err(ProviderError::Timeout(_))),
            "{items:?}"
        );
    }

    #[tokio::test]
    async fn non_2xx_answers_carry_status_body_and_retry_after() {
        let uri = serve_once(
            b"HTTP/1.1 429 Too Many Requests\r\nretry-after: 7\r\ncontent-length: 9\r\n\r\nslow down",
        )
        .await;
        let err = client()
            .post_json(&uri, &[], b"{}".to_vec(), Duration::from_secs(5))
            .await
            .unwrap_err();
        match err {
            ProviderError::Http {
                status,
                body,
                retry_after,
            } => {
                assert_eq!(status, 429);
                assert_eq!(body, "slow down");
                assert_eq!(retry_after, Some(Duration::from_secs(7)));
            }
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn a_refused_connection_is_a_connect_error_with_its_cause() {
        // Bind and drop: the port is (almost certainly) closed right after.
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let uri: Uri = format!("http://{addr}/v1").parse().unwrap();
        let err = client()
            .post_json(&uri, &[], b"{}".to_vec(), Duration::from_secs(5))
            .await
            .unwrap_err();
        match err {
            ProviderError::Connect(m) => assert!(m.to_lowercase().contains("refused"), "{m}"),
            other => panic!("{other:?}"),
        }
    }
}
