//! A reverse proxy with no logic: every POST is forwarded to one upstream URL and the
//! upstream's body comes back unchanged. It measures the floor under a gateway's overhead
//! in the bench-peers harness, and splits the HTTP stack's share by layer:
//!
//! * `--server hyper`: hyper's HTTP/1 connection with a plain service function;
//!   `--server axum-http1`: an axum `Router` on that same HTTP/1 connection;
//!   `--server axum`: `axum::serve` (hyper-util's auto HTTP/1 + HTTP/2 connection), what
//!   Arbiter's gateway uses.
//! * `--client hyper`: hyper-util's pooled legacy client; `--client reqwest`: reqwest.
//!
//! `floor-proxy --server axum --client reqwest --upstream http://127.0.0.1:18080/v1/chat/completions`

use std::net::SocketAddr;

use axum::response::{IntoResponse, Response};
use axum::serve::ListenerExt;
use bytes::Bytes;
use clap::{Parser, ValueEnum};
use http_body_util::{BodyExt, Full};
use hyper::{header, Request, StatusCode};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::{TokioExecutor, TokioIo};

#[derive(Clone, Copy, ValueEnum)]
enum Server {
    Hyper,
    AxumHttp1,
    Axum,
}

#[derive(Clone, Copy, ValueEnum)]
enum ClientKind {
    Hyper,
    Reqwest,
}

#[derive(Parser)]
struct Args {
    #[arg(long, value_enum, default_value = "hyper")]
    server: Server,
    #[arg(long, value_enum, default_value = "hyper")]
    client: ClientKind,
    #[arg(long, default_value = "127.0.0.1:18090")]
    listen: SocketAddr,
    /// Full URL every request is sent to.
    #[arg(long)]
    upstream: String,
}

#[derive(Clone)]
enum Upstream {
    Hyper(Box<Client<HttpConnector, Full<Bytes>>>, hyper::Uri),
    Reqwest(reqwest::Client, reqwest::Url),
}

impl Upstream {
    fn new(kind: ClientKind, url: &str) -> Self {
        match kind {
            ClientKind::Hyper => {
                let mut connector = HttpConnector::new();
                connector.set_nodelay(true);
                let client = Client::builder(TokioExecutor::new()).build(connector);
                Upstream::Hyper(Box::new(client), url.parse().expect("upstream URL"))
            }
            ClientKind::Reqwest => {
                let client = reqwest::Client::builder()
                    .tcp_nodelay(true)
                    .build()
                    .expect("client");
                Upstream::Reqwest(client, url.parse().expect("upstream URL"))
            }
        }
    }

    /// POSTs `body` upstream; the upstream's body, or 502.
    async fn forward(&self, body: Bytes) -> Response {
        let got = match self {
            Upstream::Hyper(client, uri) => {
                let mut req = Request::post(uri.clone())
                    .body(Full::new(body))
                    .expect("request");
                req.headers_mut().insert(
                    header::CONTENT_TYPE,
                    header::HeaderValue::from_static("application/json"),
                );
                match client.request(req).await {
                    Ok(r) => r.into_body().collect().await.map(|b| b.to_bytes()).ok(),
                    Err(_) => None,
                }
            }
            Upstream::Reqwest(client, url) => {
                let sent = client
                    .post(url.clone())
                    .header(header::CONTENT_TYPE, "application/json")
                    .body(body)
                    .send()
                    .await;
                match sent {
                    Ok(r) => r.bytes().await.ok(),
                    Err(_) => None,
                }
            }
        };
        match got {
            Some(b) => ([(header::CONTENT_TYPE, "application/json")], b).into_response(),
            None => StatusCode::BAD_GATEWAY.into_response(),
        }
    }
}

fn main() {
    let args = Args::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(args.listen)
            .await
            .expect("bind");
        let upstream = Upstream::new(args.client, &args.upstream);
        let router = {
            let upstream = upstream.clone();
            axum::Router::new().fallback(axum::routing::post(move |body: Bytes| {
                let upstream = upstream.clone();
                async move { upstream.forward(body).await }
            }))
        };
        match args.server {
            Server::Axum => {
                let listener = listener.tap_io(|tcp| {
                    let _ = tcp.set_nodelay(true);
                });
                axum::serve(listener, router).await.expect("serve");
            }
            Server::Hyper | Server::AxumHttp1 => loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let io = TokioIo::new(stream);
                let http1 = hyper::server::conn::http1::Builder::new();
                if let Server::AxumHttp1 = args.server {
                    let service = hyper_util::service::TowerToHyperService::new(router.clone());
                    tokio::spawn(async move {
                        let _ = http1.serve_connection(io, service).await;
                    });
                } else {
                    let upstream = upstream.clone();
                    let service =
                        hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
                            let upstream = upstream.clone();
                            async move {
                                let body = req
                                    .into_body()
                                    .collect()
                                    .await
                                    .map(|b| b.to_bytes())
                                    .unwrap_or_default();
                                Ok::<_, std::convert::Infallible>(upstream.forward(body).await)
                            }
                        });
                    tokio::spawn(async move {
                        let _ = http1.serve_connection(io, service).await;
                    });
                }
            },
        }
    });
}
