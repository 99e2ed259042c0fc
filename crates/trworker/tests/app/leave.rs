//! Leaving the desk: sign-out, and a page closed past the grace, move the worker to the leave activity.

use serde_json::json;

use crate::helpers::{spawn_app, Socket, TestApp};

/// Closes `socket` and waits until the server has seen it go.
async fn close(app: &TestApp, mut socket: Socket) {
    let before = app.state.connections().1;
    let _ = socket.stream.close(None).await;
    for _ in 0..500 {
        if app.state.connections().1 < before {
            return;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    panic!("the server never saw the socket close");
}

/// Signs `identity` in on a page, sets its `activity` and closes the page: the token.
async fn close_page_at(app: &TestApp, identity: &str, activity: &str) -> String {
    let (token, socket) = app.connect(identity).await;
    app.set_activity(&token, activity).await;
    close(app, socket).await;
    token
}

/// Moves the app's clock on by `millis` and reconciles, as its timer would.
async fn reconcile_after(app: &TestApp, millis: i64) {
    app.clock.advance_millis(millis);
    app.state.reconcile().await;
}

#[tokio::test]
async fn signing_out_moves_the_worker_offline() {
    let app = spawn_app().await;
    let token = app.sign_in("alice").await;
    app.set_activity(&token, "Available").await;
    let (status, body) = app.post("/api/token/sign-out", &token, json!({})).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["activity"], "Offline");
    assert_eq!(app.worker_activity(&app.alice).await, "Offline");
    // Without a token: nothing to sign out.
    let response = app.http.post(app.url("/api/token/sign-out")).send().await.expect("request");
    assert_eq!(response.status().as_u16(), 401);
}

#[tokio::test]
async fn a_page_closed_past_the_grace_moves_an_available_worker_offline() {
    let app = spawn_app().await;
    close_page_at(&app, "alice", "Available").await;

    reconcile_after(&app, 119_000).await;
    assert_eq!(app.worker_activity(&app.alice).await, "Available", "within the grace");
    reconcile_after(&app, 2_000).await;
    assert_eq!(app.worker_activity(&app.alice).await, "Offline", "past the grace");
}

#[tokio::test]
async fn a_page_that_comes_back_or_a_break_keeps_the_worker_where_it_is() {
    let app = spawn_app().await;
    let token = close_page_at(&app, "alice", "Available").await;
    app.clock.advance_millis(60_000);
    // A reload: the page is back within the grace.
    let mut again = app.socket(&token, None).await;
    again.next().await.expect("state");
    reconcile_after(&app, 120_000).await;
    assert_eq!(app.worker_activity(&app.alice).await, "Available");

    // Bob goes on a break and closes his page: a break is his choice, left alone.
    close_page_at(&app, "bob", "Unavailable").await;
    reconcile_after(&app, 121_000).await;
    assert_eq!(app.worker_activity(&app.bob).await, "Unavailable");
    drop(again);
}
