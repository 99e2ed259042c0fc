use rand::SeedableRng;
use serde_json::json;

use super::*;

const AC: &str = "AC00000000000000000000000000000001";
const WK: &str = "WK00000000000000000000000000000002";
const WT: &str = "WT00000000000000000000000000000003";
const WR: &str = "WR00000000000000000000000000000004";

fn event(text: &str) -> ChannelEvent {
    match read_frame(text) {
        Frame::Event(event) => event,
        other => panic!("not an event: {other:?}"),
    }
}

#[test]
fn whitespace_is_a_heartbeat() {
    for text in ["", " ", "\n", " \r\n\t "] {
        assert!(matches!(read_frame(text), Frame::Heartbeat), "{text:?}");
    }
}

#[test]
fn a_reservation_event_is_its_task_with_the_reservation_sid() {
    let frame = json!({"event_type": "reservation.created", "payload": {
        "sid": WT, "account_sid": AC, "assignment_status": "reserved", "attributes": "{\"a\":1}",
        "age": 3, "priority": 5, "timeout": 60, "reservation_sid": WR, "unknown_field": [1]}});
    let e = event(&frame.to_string());
    assert_eq!(e.event_type, "reservation.created");
    assert_eq!(e.payload["reservation_sid"], WR);
    let EventPayload::Reservation { task, reservation_sid } = e.kind else { panic!("{:?}", e.kind) };
    assert_eq!(reservation_sid, WR);
    assert_eq!(task.sid, WT);
    assert_eq!(task.assignment_status, Some(models::TaskAssignmentStatus::Reserved));
    assert_eq!(task.priority, 5);
    assert_eq!(task.attributes_json().unwrap(), json!({"a": 1}));
}

#[test]
fn worker_task_and_worker_channel_payloads_are_typed_by_their_sid() {
    let worker = event(
        &json!({"event_type": "worker.activity.update", "payload": {
        "sid": WK, "activity_name": "Idle", "available": true}})
        .to_string(),
    );
    let EventPayload::Worker(w) = worker.kind else { panic!("{:?}", worker.kind) };
    assert_eq!((w.sid.as_str(), w.activity_name.as_deref(), w.available), (WK, Some("Idle"), Some(true)));

    let task = event(&json!({"event_type": "task.created", "payload": {"sid": WT}}).to_string());
    assert!(matches!(task.kind, EventPayload::Task(t) if t.sid == WT));

    let channel = event(
        &json!({"event_type": "worker.capacity.update", "payload": {
        "sid": "WC00000000000000000000000000000005", "worker_sid": WK, "configured_capacity": 2,
        "available_capacity_percentage": 50}})
        .to_string(),
    );
    let EventPayload::WorkerChannel(c) = channel.kind else { panic!("{:?}", channel.kind) };
    assert_eq!((c.configured_capacity, c.available_capacity_percentage), (Some(2), Some(50)));

    for payload in [json!({"sid": "WQ00000000000000000000000000000006"}), json!({}), json!(null), json!(7)] {
        let other = event(&json!({"event_type": "task-queue.created", "payload": payload}).to_string());
        assert_eq!(other.kind, EventPayload::Other, "{payload}");
    }
    // No payload at all reads as null.
    assert_eq!(event(r#"{"event_type":"x"}"#).kind, EventPayload::Other);
}

#[test]
fn unreadable_frames_are_bad_not_fatal() {
    for text in [
        "not json",
        "{}",
        r#"{"event_type": 5, "payload": {}}"#,
        r#"["event_type"]"#,
        // The SID says worker, the body is not one.
        r#"{"event_type": "worker.activity.update", "payload": {"sid": "WK1", "available": "yes"}}"#,
        r#"{"event_type": "reservation.created", "payload": {"sid": "WT1", "age": -1, "reservation_sid": "WR1"}}"#,
    ] {
        assert!(matches!(read_frame(text), Frame::Bad(_)), "{text}");
    }
    let Frame::Bad(error) = read_frame(
        r#"{"event_type": "worker.activity.update", "payload": {"sid": "WK1", "available": "yes"}}"#,
    ) else {
        unreachable!()
    };
    assert!(error.starts_with("worker.activity.update"), "{error}");
}

#[test]
fn the_channel_url_comes_from_the_bridge_base() {
    let url = |base: &str| Config::new(AC, WK).bridge_url(base).channel_url().map(|u| u.to_string());
    assert_eq!(
        Config::new(AC, WK).channel_url().unwrap().as_str(),
        format!("wss://event-bridge.twilio.com/v1/wschannels/{AC}/{WK}")
    );
    assert_eq!(
        url("http://127.0.0.1:8080/v1/wschannels").unwrap(),
        format!("ws://127.0.0.1:8080/v1/wschannels/{AC}/{WK}")
    );
    assert_eq!(
        url("http://127.0.0.1:8080/v1/wschannels/?x=1#f").unwrap(),
        format!("ws://127.0.0.1:8080/v1/wschannels/{AC}/{WK}")
    );
    assert_eq!(
        url("https://[::1]:9/v1/wschannels").unwrap(),
        format!("wss://[::1]:9/v1/wschannels/{AC}/{WK}")
    );
    assert_eq!(url("ws://h/b").unwrap(), format!("ws://h/b/{AC}/{WK}"));
    assert_eq!(url("wss://h").unwrap(), format!("wss://h/{AC}/{WK}"));
    for bad in ["ftp://h/x", "not a url", "mailto:x@y", "file:///tmp"] {
        assert!(matches!(url(bad), Err(ConfigError::BridgeUrl { .. })), "{bad}");
    }
    assert!(matches!(Config::new("AC1", WK).channel_url(), Err(ConfigError::Sid { .. })));
    assert!(matches!(Config::new(AC, WT).channel_url(), Err(ConfigError::Sid { .. })));
    for ok in ["WQ00000000000000000000000000000001", "WS00000000000000000000000000000001"] {
        assert!(Config::new(AC, ok).channel_url().is_ok(), "{ok}");
    }
}

#[test]
fn the_token_goes_in_the_query_encoded() {
    let mut url = Config::new(AC, WK).channel_url().unwrap();
    url.query_pairs_mut().append_pair("token", "a.b+c/=").append_pair("closeExistingSessions", "false");
    assert!(url.as_str().ends_with("?token=a.b%2Bc%2F%3D&closeExistingSessions=false"), "{url}");
}

#[test]
fn backoff_grows_within_its_bounds() {
    let (min, max) = (Duration::from_secs(1), Duration::from_secs(30));
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    for attempt in 1..200u32 {
        let base = min.saturating_mul(1 << attempt.saturating_sub(1).min(31)).min(max);
        for _ in 0..50 {
            let d = backoff(attempt, min, max, &mut rng);
            assert!(d >= min && d <= max, "attempt {attempt}: {d:?}");
            assert!(d >= base / 2 && d <= base, "attempt {attempt}: {d:?} not in [{:?}, {base:?}]", base / 2);
        }
    }
    assert_eq!(backoff(1, min, max, &mut rng), min, "the first retry waits the floor");
    let last = backoff(u32::MAX, min, max, &mut rng);
    assert!(last >= max / 2 && last <= max, "{last:?}");
    // The floor holds for odd settings too.
    let c = Config::new(AC, WK).backoff(Duration::ZERO, Duration::ZERO);
    assert_eq!((c.backoff_min, c.backoff_max), (Duration::from_millis(10), Duration::from_millis(10)));
}

#[test]
fn renewal_comes_a_minute_early_or_at_half_life() {
    let h8 = Duration::from_secs(8 * 3600);
    assert_eq!(renew_after(h8), h8 - Duration::from_secs(60));
    assert_eq!(renew_after(Duration::from_secs(120)), Duration::from_secs(60));
    assert_eq!(renew_after(Duration::from_secs(10)), Duration::from_secs(5));
    assert_eq!(renew_after(Duration::from_secs(1)), Duration::from_millis(500));
}

#[test]
fn a_worker_capability_is_a_token_source() {
    let mut cap = WorkerCapability::new(AC, "secret", "WS00000000000000000000000000000001", WK)
        .ttl(Duration::from_secs(600));
    let t = TokenSource::token(&mut cap, 1_000).unwrap();
    assert_eq!(t.expires_at, 1_600);
    let claims = token::verify_worker_token(&t.jwt, "secret", 1_001).unwrap();
    assert_eq!(claims.channel, WK);
    assert!(!format!("{t:?}").contains(&t.jwt), "Debug hides the JWT");
}

#[test]
fn refusals_and_closes_read_as_reasons() {
    let r = refused_reason(401, br#"{"code": 20101, "message": "Invalid Access Token", "status": 401}"#);
    assert_eq!(r, "the bridge refused the token (HTTP 401): Invalid Access Token");
    assert_eq!(refused_reason(403, b""), "the bridge refused the token (HTTP 403)");
    let long = "x".repeat(10_000);
    assert!(refused_reason(502, long.as_bytes()).len() < 300);
    let frame = CloseFrame { code: CloseCode::from(4001), reason: "Token expired".into() };
    assert_eq!(
        closed_reason(Some(&frame)),
        "the bridge closed the connection: the token expired (4001: Token expired)"
    );
    let frame = CloseFrame { code: CloseCode::Normal, reason: "".into() };
    assert_eq!(closed_reason(Some(&frame)), "the bridge closed the connection (1000)");
}

/// The reporting of the task, without a server: the token source fails, as a refused token would.
#[tokio::test(start_paused = true)]
async fn failures_are_reported_once_per_reason_and_retried_with_growing_delays() {
    let calls = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let counter = calls.clone();
    let source = move |_now: u64| -> Result<Token, SourceError> {
        let n = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Err(if n < 5 { "boom" } else { "bang" }.into())
    };
    let start = Instant::now();
    let (channel, mut updates) = Channel::open(Config::new(AC, WK), source).unwrap();
    let first = updates.recv().await.unwrap();
    let reason = "the token source failed: boom".to_owned();
    assert_eq!(first, ChannelUpdate::Disconnected { reason, attempt: 1, retry_in: DEFAULT_BACKOFF_MIN });
    // Attempts 2 to 5 fail alike and are not reported; the sixth fails otherwise and is.
    let ChannelUpdate::Disconnected { reason, attempt, retry_in } = updates.recv().await.unwrap() else {
        panic!("a new reason is reported")
    };
    assert_eq!((reason.as_str(), attempt), ("the token source failed: bang", 6));
    assert!(retry_in >= DEFAULT_BACKOFF_MAX / 2 && retry_in <= DEFAULT_BACKOFF_MAX, "{retry_in:?}");
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 6);
    // Waited 1 s, then [1, 2], [2, 4], [4, 8], [8, 16] s: the paused clock moved only by the backoff.
    let waited = start.elapsed();
    assert!(waited >= Duration::from_secs(16) && waited <= Duration::from_secs(31), "{waited:?}");
    tokio::time::timeout(Duration::from_secs(1), channel.close()).await.unwrap();
    assert_eq!(updates.recv().await, None);
}

async fn next(updates: &mut mpsc::Receiver<ChannelUpdate>) -> ChannelUpdate {
    timeout(Duration::from_secs(20), updates.recv()).await.expect("an update").expect("running")
}

/// A bad frame is skipped and the channel carries on; a message over the cap drops the connection, which
/// is reopened as a reconnect.
#[tokio::test]
async fn a_bad_frame_is_skipped_and_an_oversize_one_costs_a_reconnect() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let mut held = Vec::new();
        let mut first = true;
        while let Ok((stream, _)) = listener.accept().await {
            let Ok(mut socket) = tokio_tungstenite::accept_async(stream).await else { continue };
            if std::mem::take(&mut first) {
                let event = json!({"event_type": "task.created", "payload": {"sid": WT}}).to_string();
                for text in [" ".to_owned(), "not json".to_owned(), event, "x".repeat(MAX_MESSAGE + 1)] {
                    let _ = socket.send(Message::Text(text.into())).await;
                }
            }
            held.push(socket);
        }
    });
    let config = Config::new(AC, WK)
        .bridge_url(format!("http://{addr}/v1/wschannels"))
        .backoff(Duration::from_millis(10), Duration::from_millis(10));
    let source =
        |now: u64| -> Result<Token, SourceError> { Ok(Token { jwt: "t".into(), expires_at: now + 60 }) };
    let (channel, mut updates) = Channel::open(config, source).unwrap();
    assert_eq!(next(&mut updates).await, ChannelUpdate::Connected { reconnect: false });
    assert!(
        matches!(next(&mut updates).await, ChannelUpdate::Skipped { error } if error.contains("not JSON"))
    );
    assert!(matches!(next(&mut updates).await, ChannelUpdate::Event(e) if e.event_type == "task.created"));
    let ChannelUpdate::Disconnected { reason, .. } = next(&mut updates).await else {
        panic!("the oversize message")
    };
    assert!(reason.contains("too long"), "{reason}");
    assert_eq!(next(&mut updates).await, ChannelUpdate::Connected { reconnect: true });
    // Dropped, not closed: this server never answers a close frame.
    drop(channel);
    assert_eq!(updates.recv().await, None);
    server.abort();
}

/// A consumer that does not read holds the client back: nothing is dropped, events come in order.
#[tokio::test]
async fn a_slow_consumer_loses_nothing() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let mut socket = tokio_tungstenite::accept_async(stream).await.unwrap();
        for i in 0..20 {
            let event = json!({"event_type": format!("e{i}"), "payload": {}}).to_string();
            socket.send(Message::Text(event.into())).await.unwrap();
        }
        // Hold the socket (and answer the client's close) until the client goes.
        while let Some(Ok(_)) = socket.next().await {}
    });
    let config = Config::new(AC, WK).bridge_url(format!("http://{addr}/v1/wschannels")).buffer(1);
    let source =
        |now: u64| -> Result<Token, SourceError> { Ok(Token { jwt: "t".into(), expires_at: now + 60 }) };
    let (channel, mut updates) = Channel::open(config, source).unwrap();
    assert_eq!(next(&mut updates).await, ChannelUpdate::Connected { reconnect: false });
    // Not reading for a while lets the server send everything against a full buffer (the assertions
    // hold however long this takes).
    tokio::time::sleep(Duration::from_millis(200)).await;
    for i in 0..20 {
        let ChannelUpdate::Event(e) = next(&mut updates).await else { panic!("event {i}") };
        assert_eq!(e.event_type, format!("e{i}"));
    }
    channel.close().await;
    timeout(Duration::from_secs(20), server).await.unwrap().unwrap();
}

/// `wss://` goes through TLS: a server that does not speak it fails the handshake, and says so.
#[tokio::test]
async fn wss_starts_a_tls_handshake() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            use tokio::io::AsyncWriteExt;
            let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
        }
    });
    let config = Config::new(AC, WK).bridge_url(format!("https://{addr}/v1/wschannels"));
    let source =
        |now: u64| -> Result<Token, SourceError> { Ok(Token { jwt: "t".into(), expires_at: now + 60 }) };
    let (channel, mut updates) = Channel::open(config, source).unwrap();
    let Some(ChannelUpdate::Disconnected { reason, .. }) = updates.recv().await else { panic!() };
    assert!(reason.starts_with(&format!("TLS with {addr} failed")), "{reason}");
    channel.close().await;
    server.abort();
}

#[test]
fn tls_is_set_up_with_ring() {
    assert!(tls_connector().is_ok());
}
