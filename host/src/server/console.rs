//! The web console at `/console`: a built single-page app (sources in `console/`,
//! built into `host/assets/console/` and embedded here, so serving it needs no Node.js).
//! It reads the same JSON API as every client, with the key the user signs in with;
//! these routes serve files only.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

/// Scripts, styles and requests from this origin only; no inline code, no frames, no
/// forms posted elsewhere. Pico's icons are `data:` images in its stylesheet.
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
    connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

const INDEX: &[u8] = include_bytes!("../../assets/console/index.html");
const APP: &[u8] = include_bytes!("../../assets/console/app.js");
const STYLE: &[u8] = include_bytes!("../../assets/console/style.css");

fn asset(body: &'static [u8], content_type: &'static str) -> Response {
    let mut r = (StatusCode::OK, body).into_response();
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // The files keep their names from one build to the next: revalidate each time.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

pub(super) fn routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    let index = || async { asset(INDEX, "text/html; charset=utf-8") };
    Router::new()
        .route("/console", get(index))
        .route("/console/", get(index))
        .route(
            "/console/app.js",
            get(|| async { asset(APP, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/console/style.css",
            get(|| async { asset(STYLE, "text/css; charset=utf-8") }),
        )
}
