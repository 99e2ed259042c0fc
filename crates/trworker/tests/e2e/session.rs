//! Signing in, reload, two tabs of one worker, and a server restart under a signed-in page.

use crate::calls::{pending_from, ring, PENDING};
use crate::scene::Scene;
use crate::server::{Server, PASSWORD, WORKER};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_in_with_a_wrong_password_then_the_right_one() {
    let Some(scene) = Scene::at_sign_in("signin").await else { return };
    let Scene { browser, .. } = &scene;

    // The workspace's name is there before anyone signs in.
    browser.wait_text("workspace", "writers").await;

    browser.sign_in(WORKER, "not the password").await;
    let error = browser
        .wait_xpath("a sign-in error", "//*[@data-testid='signin-error'][normalize-space(.)!='']")
        .await;
    let message = error.text().await.expect("error text");
    assert!(!message.contains(PASSWORD), "the error must not reveal the password: {message}");
    assert_eq!(browser.count("#desk:not([hidden])").await, 0, "a wrong password must not open the desk");

    browser.sign_in_ok(WORKER, PASSWORD).await;
    browser.wait_xpath("the worker's name", &format!("//*[@data-testid='worker-name'][.='{WORKER}']")).await;
    browser.wait_activity("Offline").await;
    browser.wait_gone("the sign-in error", "//*[@data-testid='signin-error'][normalize-space(.)!='']").await;
    assert_eq!(browser.count("#signin:not([hidden])").await, 0, "the sign-in form is hidden once signed in");

    scene.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_keeps_the_session_and_the_incoming_call() {
    let Some(scene) = Scene::online("reload").await else { return };
    let Scene { browser, server, .. } = &scene;
    ring(browser, server, "+15551230004").await;

    browser.client.refresh().await.expect("reload");
    browser.wait_connected().await;
    browser.wait_activity("Available").await;
    browser.wait_xpath("the incoming call after the reload", &pending_from("+15551230004")).await;
    assert_eq!(browser.count("#signin:not([hidden])").await, 0, "a reload must not ask to sign in again");
    // The log survives the reload too.
    browser.wait_text("log", "You signed in as").await;

    scene.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_tabs_of_one_worker_stay_in_step() {
    let Some(scene) = Scene::signed_in("tabs").await else { return };
    let Scene { browser, server, .. } = &scene;
    let first = browser.client.window().await.expect("first window");

    // A second tab of the same worker (a tab's session lives in its own sessionStorage: sign in there too).
    let second = browser.client.new_window(true).await.expect("new tab").handle;
    browser.client.switch_to_window(second.clone()).await.expect("switch to the second tab");
    browser.open(&server.page()).await;
    browser.sign_in_ok(WORKER, PASSWORD).await;
    browser.wait_activity("Offline").await;

    // Going online in the first tab shows in the second.
    browser.client.switch_to_window(first.clone()).await.expect("switch to the first tab");
    browser.press("Go online").await;
    browser.wait_activity("Available").await;
    browser.client.switch_to_window(second.clone()).await.expect("switch to the second tab");
    browser.wait_activity("Available").await;

    // A call rings in both; accepting it in the second ends the ringing in the first.
    server.call("+15551230005", serde_json::json!({})).await;
    browser.wait_xpath("the call in the second tab", &pending_from("+15551230005")).await;
    browser.client.switch_to_window(first.clone()).await.expect("switch to the first tab");
    browser.wait_xpath("the call in the first tab", &pending_from("+15551230005")).await;
    browser.client.switch_to_window(second.clone()).await.expect("switch to the second tab");
    browser.press_in(&pending_from("+15551230005"), "Accept").await;
    browser.wait_xpath("the accepted call", crate::calls::ON_CALL).await;
    browser.client.switch_to_window(first).await.expect("switch to the first tab");
    browser.wait_gone("the ringing call in the first tab", PENDING).await;
    browser.wait_xpath("the accepted call in the first tab", crate::calls::ON_CALL).await;
    browser.wait_activity("Unavailable").await;

    scene.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_reconnects_after_a_server_restart() {
    let Some(mut scene) = Scene::online("restart").await else { return };
    let port = scene.server.addr.port();

    // The server alone stops (moved out of the scene) and starts again in its place.
    scene.server.stop().await;
    scene
        .browser
        .wait_xpath("the lost connection", "//*[@data-testid='connection'][@data-state!='connected']")
        .await;
    // Worded as a connection, not as the worker's activity (which is also called Offline).
    let said = scene.browser.text_of("connection").await;
    assert!(["Reconnecting…", "Disconnected"].contains(&said.as_str()), "{said}");

    // Same port, same data directory: same credentials, so the page's token is still good.
    scene.server = Server::start(&scene.dir, port).await;
    let Scene { browser, server, .. } = &scene;
    browser.wait_connected().await;
    browser.wait_activity("Available").await;
    assert_eq!(browser.count("#signin:not([hidden])").await, 0, "the worker stays signed in");
    // The state is shown as a state; "Go online" stays an action, not shown pressed while online.
    assert_eq!(browser.count("#activity-buttons [aria-pressed='true']").await, 0);
    assert_eq!(browser.text_of("connection").await, "Connected");
    ring(browser, server, "+15551230006").await;

    scene.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_log_clears_and_signing_out_returns_to_the_form() {
    let Some(scene) = Scene::online("signout").await else { return };
    let Scene { browser, server, .. } = &scene;
    browser.wait_text("log", "You signed in as").await;

    browser.press("Clear").await;
    browser.wait_xpath("an empty log", "//*[@data-testid='log'][not(.//li)]").await;
    browser.press("Go offline").await;
    browser.wait_activity("Offline").await;
    browser.press("Go online").await;
    browser.wait_activity("Available").await;

    browser.press("Sign out").await;
    browser.wait_xpath("the sign-in form", "//*[@id='signin'][not(@hidden)]").await;
    assert_eq!(browser.count("#desk:not([hidden])").await, 0, "the desk is hidden after signing out");
    // Signing out leaves the desk: no call rings for a worker who went home, and the next person at the
    // desk does not see the previous worker's log.
    assert_eq!(server.worker_activity(WORKER).await, "Offline");
    let log = browser.text_of("log").await;
    assert!(!log.contains("You are now"), "the log is cleared on sign-out: {log}");
    // Signed out for good: a reload does not bring the session back.
    browser.client.refresh().await.expect("reload");
    browser.wait_xpath("the sign-in form after a reload", "//*[@id='signin'][not(@hidden)]").await;
    browser.wait_text("workspace", "writers").await;

    scene.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_says_which_queues_send_the_worker_calls() {
    let Some(scene) = Scene::signed_in("queues").await else { return };
    let Scene { browser, .. } = &scene;
    // The demo's charles has the support skill: the support queue takes him, the sales queue does not.
    browser.wait_text("queues", "Your calls come from: support").await;
    let line = browser.text_of("queues").await;
    assert!(!line.contains("sales"), "{line}");

    scene.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_says_when_the_server_cannot_hear_from_taskrouter() {
    // The worker's event channel goes to a bridge nobody answers (port 9): the server would not hear of
    // calls, and the page must say so rather than look connected.
    let unreachable = |config: &mut trworker::app::AppConfig| {
        let base_url = "http://127.0.0.1:9/v1/wschannels".to_owned();
        config.event_source = Some(trworker::app::channels::Source::Bridge { base_url });
    };
    let Some(scene) = Scene::at_sign_in_with("unheard", unreachable).await else { return };
    scene.browser.sign_in(WORKER, PASSWORD).await;
    let down = "//*[@data-testid='connection'][@data-state='reconnecting'][contains(., 'TaskRouter')]";
    scene.browser.wait_xpath("the link to TaskRouter shown down", down).await;
    let said = scene.browser.text_of("connection").await;
    assert!(said.starts_with("Reconnecting to TaskRouter: "), "the reason is shown: {said}");
    scene.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_says_who_changed_the_workers_status() {
    let Some(scene) = Scene::online("notice").await else { return };
    let Scene { browser, server, .. } = &scene;
    // A supervisor (the supervisor page's API) sets the worker Offline.
    let http = reqwest::Client::new();
    let password = server.state.config().supervisor_password.clone();
    let token = crate::support::supervisor_token(&server.base, "Grace", &password).await;
    let worker = server.worker_sid(WORKER).await;
    let offline = server.activity_sid("Offline").await;
    let response = http
        .post(format!("{}/api/supervisor/workers/{worker}/activity", server.base))
        .bearer_auth(&token)
        .json(&serde_json::json!({ "activity_sid": offline }))
        .send()
        .await
        .expect("set the activity");
    assert_eq!(response.status().as_u16(), 200);
    browser.wait_activity("Offline").await;
    let said = "//*[@id='log-lines']/li[contains(., 'Grace') and contains(., 'Offline')]";
    browser.wait_xpath("who did it, in the Activity panel", said).await;
    scene.close().await;
}
