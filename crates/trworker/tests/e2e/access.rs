//! Keyboard and screen reader: signing in and answering a call without a mouse, and the live region that
//! announces the call.

use fantoccini::key::Key;
use twilio::client::taskrouter::UpdateWorker;

use crate::browser::Browser;
use crate::calls::ring;
use crate::scene::Scene;
use crate::server::{PASSWORD, WORKER};

/// The focused element's `id` attribute and text.
async fn focused(browser: &Browser) -> (String, String) {
    let element = browser.client.active_element().await.expect("the focused element");
    let id = element.attr("id").await.expect("id").unwrap_or_default();
    (id, element.text().await.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_keyboard_alone_signs_in_and_accepts_a_call() {
    let Some(scene) = Scene::at_sign_in("keyboard").await else { return };
    let Scene { browser, server, .. } = &scene;

    // The identity field has the focus on arrival; Tab leads to the password; Enter submits.
    assert_eq!(focused(browser).await.0, "identity");
    let field = browser.client.active_element().await.expect("focused field");
    field.send_keys(WORKER).await.expect("type identity");
    field.send_keys(&char::from(Key::Tab).to_string()).await.expect("tab");
    assert_eq!(focused(browser).await.0, "password");
    let field = browser.client.active_element().await.expect("focused field");
    field.send_keys(&format!("{PASSWORD}{}", char::from(Key::Enter))).await.expect("type password");
    browser.wait_connected().await;
    browser.wait_activity("Offline").await;

    // Online from elsewhere (a supervisor, another tab), so the page's focus stays where sign-in put it.
    let available = server.activity_sid("Available").await;
    let worker = server.worker_sid(WORKER).await;
    server
        .admin
        .update_worker(&worker, &UpdateWorker { activity_sid: Some(available), ..Default::default() })
        .await
        .expect("worker online");
    browser.wait_activity("Available").await;

    ring(browser, server, "+15551230008").await;
    // Screen readers hear the call; the keyboard is brought to "Accept".
    browser.wait_text("announcer", "Incoming call from +15551230008").await;
    let accept = browser
        .wait_xpath("Accept with the focus", "//button[normalize-space(.)='Accept'][@data-action='accept']")
        .await;
    let (_, text) = focused(browser).await;
    assert_eq!(text, "Accept", "a new call brings the focus to its Accept button");
    accept.send_keys(&char::from(Key::Enter).to_string()).await.expect("press Enter");
    browser.wait_xpath("the accepted call", crate::calls::ON_CALL).await;

    scene.close().await;
}
