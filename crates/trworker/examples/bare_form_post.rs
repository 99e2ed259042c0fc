//! The reference ceiling of the HTTP benchmark (`bench/http/run`): a bare axum server whose one handler
//! reads a form-encoded POST body into name/value pairs and answers a small JSON 201.
//!
//! It does what every `POST /v1/Workspaces/{WS}/Tasks` of `trworker engine` must do at the least (accept the
//! connection, parse HTTP, read and decode the form, serialize JSON) and nothing else: no auth, no engine,
//! no durability. It runs on the same runtime as `trworker` (`tokio::runtime::Runtime::new()`, the
//! multi-thread scheduler with one worker per core), so the ratio of the two rates is the share of the
//! machine's HTTP capacity that the engine keeps.
//!
//! Usage: `bare_form_post [PORT]` (default 0: a free port). It prints `listening on http://ADDR` once bound
//! and serves on 127.0.0.1 until killed.

use std::net::SocketAddr;

use axum::body::Bytes;
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};

/// Decodes the form the way the facade's handlers see it, and answers with how many parameters came and
/// the length of the first value, so the work cannot be optimized away.
async fn create(body: Bytes) -> Result<(StatusCode, Json<serde_json::Value>), StatusCode> {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_bytes(&body).map_err(|_| StatusCode::BAD_REQUEST)?;
    let first_len = pairs.first().map_or(0, |(_, v)| v.len());
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({
            "sid": "WT00000000000000000000000000000000",
            "parameters": pairs.len(),
            "first_value_length": first_len,
        })),
    ))
}

fn main() -> anyhow::Result<()> {
    let port: u16 = match std::env::args().nth(1) {
        Some(p) => p.parse().map_err(|_| anyhow::anyhow!("PORT '{p}' is not a port number (0..65535)"))?,
        None => 0,
    };
    // The same runtime as `trworker`'s main.
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port))).await?;
        println!("listening on http://{}", listener.local_addr()?);
        let app = Router::new().route("/v1/Workspaces/{workspace}/Tasks", post(create));
        axum::serve(listener, app).await?;
        Ok(())
    })
}
