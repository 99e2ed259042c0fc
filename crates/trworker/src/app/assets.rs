//! The worker page and the supervisor page: the files under `crates/trworker/web/`, embedded in the binary
//! so they need no CDN, no Node build and no files beside them. `GET /` is `index.html`, `GET /supervisor`
//! is `supervisor.html`; every other file is served at `/{name}`.
//!
//! The list below is explicit; a unit test fails when a file in `web/` is missing from it. The security
//! headers (`nosniff`, the Content-Security-Policy the page is written for) come from [`super::headers`].

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::{AppError, AppState};

/// Name, content and media type of every embedded file.
const FILES: &[(&str, &str, &str)] = &[
    ("index.html", include_str!("../../web/index.html"), "text/html; charset=utf-8"),
    ("app.js", include_str!("../../web/app.js"), "text/javascript; charset=utf-8"),
    ("api.js", include_str!("../../web/api.js"), "text/javascript; charset=utf-8"),
    ("cards.js", include_str!("../../web/cards.js"), "text/javascript; charset=utf-8"),
    ("connection.js", include_str!("../../web/connection.js"), "text/javascript; charset=utf-8"),
    ("desk.js", include_str!("../../web/desk.js"), "text/javascript; charset=utf-8"),
    ("live.js", include_str!("../../web/live.js"), "text/javascript; charset=utf-8"),
    ("log.js", include_str!("../../web/log.js"), "text/javascript; charset=utf-8"),
    ("ring.js", include_str!("../../web/ring.js"), "text/javascript; charset=utf-8"),
    ("view.js", include_str!("../../web/view.js"), "text/javascript; charset=utf-8"),
    ("wrapup.js", include_str!("../../web/wrapup.js"), "text/javascript; charset=utf-8"),
    ("theme.css", include_str!("../../web/theme.css"), "text/css; charset=utf-8"),
    ("style.css", include_str!("../../web/style.css"), "text/css; charset=utf-8"),
    ("supervisor.html", include_str!("../../web/supervisor.html"), "text/html; charset=utf-8"),
    ("supervisor.js", include_str!("../../web/supervisor.js"), "text/javascript; charset=utf-8"),
    ("supervisor.css", include_str!("../../web/supervisor.css"), "text/css; charset=utf-8"),
];

/// `/`, `/supervisor` and `/{file}`.
pub fn router() -> Router<AppState> {
    Router::new().route("/", get(index)).route("/supervisor", get(supervisor)).route("/{file}", get(file))
}

fn serve(name: &str) -> Response {
    match FILES.iter().find(|(file, _, _)| *file == name) {
        Some((_, body, mime)) => {
            let mut response = (StatusCode::OK, *body).into_response();
            let headers = response.headers_mut();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(mime));
            // Revalidate every time so a new binary's page is picked up at once.
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            response
        }
        None => AppError::NotFound(format!("There is no page file {name:?}.")).into_response(),
    }
}

async fn index() -> Response {
    serve("index.html")
}

async fn supervisor() -> Response {
    serve("supervisor.html")
}

async fn file(Path(name): Path<String>) -> Response {
    serve(&name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_of_the_web_directory_is_embedded() -> std::io::Result<()> {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("web");
        for entry in std::fs::read_dir(dir)? {
            let name = entry?.file_name().to_string_lossy().into_owned();
            assert!(FILES.iter().any(|(file, _, _)| *file == name), "web/{name} is not in assets::FILES");
        }
        Ok(())
    }
}
