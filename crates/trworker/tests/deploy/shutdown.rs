//! SIGTERM: the server stops accepting, tells connected pages, saves the engine's state and exits 0; a
//! change acknowledged just before the signal is there after a restart on the same data directory.

use futures_util::StreamExt as _;
use tokio_tungstenite::tungstenite::Message;

use crate::helpers::{admin, create_task, sign_in, socket, Proc, TempDir};

const PASSWORD: &str = "shutdown-test-password";

#[tokio::test]
async fn sigterm_tells_the_pages_keeps_the_last_write_and_exits_0() {
    let dir = TempDir::new("shutdown");
    let env = [("TOKEN_PASSWORD", PASSWORD)];
    let server = Proc::start(&dir.0, &["serve"], &env);
    let token = sign_in(&server, "charles", PASSWORD).await;
    let mut page = socket(&server, &token).await;

    // Acknowledged (201) right before the signal.
    let task = create_task(&admin(&dir.0)).await;
    let exit = tokio::task::spawn_blocking(move || server.terminate()).await.expect("join");
    assert_eq!(exit.code, Some(0), "{exit:?}");
    assert!(exit.stdout.contains("trworker: stopped, state saved"), "{exit:?}");

    // The page was told, then the socket was closed with a reason (both still buffered in the socket).
    let mut told = None;
    let mut closed = None;
    while let Ok(Some(Ok(message))) =
        tokio::time::timeout(std::time::Duration::from_secs(10), page.next()).await
    {
        match message {
            Message::Text(text) => {
                let value: serde_json::Value = serde_json::from_str(text.as_str()).expect("JSON");
                if value["type"] == "shutdown" {
                    told = Some(value);
                }
            }
            Message::Close(frame) => {
                closed = frame.map(|f| (u16::from(f.code), f.reason.to_string()));
                break;
            }
            _ => {}
        }
    }
    assert_eq!(told, Some(serde_json::json!({ "type": "shutdown" })));
    assert_eq!(closed, Some((1001, "server shutdown".to_owned())));

    // Restarted on the same data directory, the task is there.
    let again = Proc::start(&dir.0, &["serve"], &env);
    let fetched = admin(&dir.0).fetch_task(&task.sid).await.expect("the task survived the restart");
    assert_eq!(fetched.sid, task.sid);
    again.stop_cleanly();
}
