//! What a stranger's connection may cost the real binary: the header and idle timeouts, the connection cap,
//! the header size cap, the WebSocket's hello limits, and the throttle on failed Basic authentication.
//!
//! The timeouts are set to a second or two so the tests are short; each test waits for the server to act
//! (a closed socket) with generous patience, never for a fixed time.

use std::time::Duration;

use futures_util::{SinkExt as _, StreamExt as _};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{get, local_env, Proc, Socket};

/// How long the server may take to close a connection it should close.
const PATIENCE: Duration = Duration::from_secs(30);

/// `trworker serve` in a data directory of its own, with `env` set.
fn serve(what: &str, env: &[(&str, &str)]) -> (crate::helpers::TempDir, Proc) {
    Proc::start_in(what, &["serve"], env)
}

async fn connect(proc: &Proc) -> TcpStream {
    TcpStream::connect(proc.base.trim_start_matches("http://")).await.expect("connect")
}

/// Reads until the server closes the connection; returns what it sent. Fails if it stays open.
async fn until_closed(stream: &mut TcpStream) -> String {
    let mut received = Vec::new();
    let read = tokio::time::timeout(PATIENCE, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => received.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "the server kept the connection open");
    String::from_utf8_lossy(&received).into_owned()
}

/// Reads until the server closes `socket`: its close code, if it sent one. Fails if it stays open.
async fn close_code(socket: &mut Socket) -> Option<u16> {
    tokio::time::timeout(PATIENCE, async {
        loop {
            match socket.next().await {
                Some(Ok(Message::Close(frame))) => return frame.map(|f| u16::from(f.code)),
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return None,
            }
        }
    })
    .await
    .expect("the socket was closed")
}

#[tokio::test]
async fn silent_slow_and_idle_connections_are_closed() {
    let (_dir, server) = serve(
        "limits-timeouts",
        &[("TRWORKER_HEADER_TIMEOUT_SECONDS", "1"), ("TRWORKER_IDLE_TIMEOUT_SECONDS", "2")],
    );
    // Connects and sends nothing.
    let mut silent = connect(&server).await;
    // Sends half a request line, then nothing (slowloris).
    let mut slow = connect(&server).await;
    slow.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: ").await.expect("write");
    // Makes one request on a keep-alive connection, then idles.
    let mut idle = connect(&server).await;
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.expect("write");
    let mut first = [0u8; 12];
    idle.read_exact(&mut first).await.expect("a response");
    assert_eq!(&first, b"HTTP/1.1 200");

    until_closed(&mut silent).await;
    until_closed(&mut slow).await;
    until_closed(&mut idle).await;
    // The server itself is fine.
    assert_eq!(get(&server.url("/healthz")).await.0, 200);
}

#[tokio::test]
async fn connections_over_the_cap_get_503_and_the_server_recovers() {
    let (_dir, server) = serve("limits-cap", &[("TRWORKER_MAX_CONNECTIONS", "4")]);
    let mut held = Vec::new();
    for _ in 0..4 {
        let mut stream = connect(&server).await;
        // A served request proves the connection holds its place before the next one opens.
        stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.expect("write");
        let mut status = [0u8; 12];
        stream.read_exact(&mut status).await.expect("a response");
        assert_eq!(&status, b"HTTP/1.1 200");
        held.push(stream);
    }
    let mut over = connect(&server).await;
    over.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.expect("write");
    let answer = until_closed(&mut over).await;
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.to_ascii_lowercase().contains("retry-after: 1"), "{answer}");
    assert!(answer.contains("connection limit"), "{answer}");

    drop(held);
    // The places come back as the held connections close.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let response = reqwest::get(server.url("/healthz")).await;
        if response.as_ref().is_ok_and(|r| r.status().as_u16() == 200) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "the server never took connections again");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn an_oversized_request_head_gets_431() {
    let (_dir, server) = serve("limits-head", &[]);
    let mut stream = connect(&server).await;
    let huge = "a".repeat(100 * 1024);
    let request = format!("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {huge}\r\n\r\n");
    // The server may stop reading once it has seen too much; what it answers is what counts.
    let _ = stream.write_all(request.as_bytes()).await;
    let answer = until_closed(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 431"), "{answer}");
    assert_eq!(get(&server.url("/healthz")).await.0, 200);
}

#[tokio::test]
async fn a_websocket_must_say_a_small_hello_in_time() {
    let (_dir, server) = serve(
        "limits-ws",
        &[("TRWORKER_WS_HELLO_TIMEOUT_SECONDS", "1"), ("TRWORKER_WS_MAX_MESSAGE_BYTES", "4096")],
    );
    let url = format!("{}/api/ws", server.base.replacen("http", "ws", 1));

    // A first message over the limit closes the socket before the server buffers it.
    let (mut big, _) = tokio_tungstenite::connect_async(&url).await.expect("connect");
    let _ = big.send(Message::Text("x".repeat(64 * 1024).into())).await;
    let ended = close_code(&mut big).await;
    assert!(ended.is_none() || ended == Some(1009), "closed as too big: {ended:?}");

    // Saying nothing: closed with 1008 once the hello time is up.
    let (mut quiet, _) = tokio_tungstenite::connect_async(&url).await.expect("connect");
    let closed = close_code(&mut quiet).await;
    assert_eq!(closed, Some(1008));
}

#[tokio::test]
async fn an_address_that_keeps_failing_basic_auth_is_throttled() {
    let (dir, server) = Proc::start_in("limits-basic", &["engine"], &[]);
    let env = local_env(&dir.0);
    let url = format!("{}/v1/Workspaces", env["TWILIO_TASKROUTER_URL"]);
    let http = reqwest::Client::new();
    let list = |token: &str| http.get(&url).basic_auth(&env["ACCOUNT_SID"], Some(token.to_owned())).send();
    assert_eq!(list(&env["AUTH_TOKEN"]).await.expect("request").status().as_u16(), 200);
    let mut statuses = Vec::new();
    for _ in 0..60 {
        statuses.push(list("wrong").await.expect("request").status().as_u16());
    }
    assert_eq!(statuses[..50], [401; 50], "the first 50 failures are answered as failures");
    assert!(statuses[50..].iter().all(|s| *s == 429), "then the address waits: {statuses:?}");
    let throttled = list(&env["AUTH_TOKEN"]).await.expect("request");
    assert_eq!(throttled.status().as_u16(), 429, "even with the right token, for a while");
    let retry_after = throttled.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_owned);
    assert!(retry_after.is_some_and(|s| s.parse::<u64>().is_ok_and(|s| s >= 1)));
    let body: serde_json::Value = throttled.json().await.expect("Twilio's error JSON");
    assert_eq!(body["status"], 429);
    assert_eq!(body["code"], 20429);
    drop(server);
}
