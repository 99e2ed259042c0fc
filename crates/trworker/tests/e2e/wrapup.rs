//! Wrap-up after a call: the countdown, "Extend", notes that survive a reload and a server outage, the
//! attribute size limit shown while typing and checked before sending, and the page completing the task with
//! the notes when the time runs out.

use trworker::app::WrapUpPolicy;
use twilio::client::taskrouter::UpdateTask;

use crate::calls::{pending_from, ring};
use crate::scene::Scene;
use crate::server::Server;

/// The wrap-up card.
const WRAPPING: &str = "//*[@data-testid='reservation'][@data-status='wrapping']";
const NOTES: &str = "//*[@data-testid='reservation'][@data-status='wrapping']//textarea[@data-field='notes']";

/// Rings a call from `from`, accepts it, lets it connect and ends it: the page shows the wrap-up card.
async fn wrapped_up(browser: &crate::browser::Browser, server: &Server, from: &str) -> String {
    let task = ring(browser, server, from).await;
    browser.press_in(&pending_from(from), "Accept").await;
    server.advance(3).await;
    browser.press_in("//*[@data-testid='conference']", "End conference").await;
    browser.wait_xpath("the wrap-up card", WRAPPING).await;
    task.sid
}

async fn notes_value(browser: &crate::browser::Browser) -> String {
    let script = format!(
        "return document.evaluate(\"{NOTES}\", document, null, 9, null).singleNodeValue?.value ?? null"
    );
    browser.eval(&script).await.as_str().unwrap_or_default().to_owned()
}

async fn countdown_end(browser: &crate::browser::Browser) -> i64 {
    let value = browser
        .eval("return document.querySelector('[data-testid=\"wrap-up-countdown\"]')?.dataset.until ?? ''")
        .await;
    value.as_str().and_then(|v| v.parse().ok()).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notes_survive_a_reload_extend_adds_a_minute_and_too_long_notes_are_refused_before_sending() {
    let Some(scene) = Scene::online("wrapup-notes").await else { return };
    let Scene { browser, server, .. } = &scene;
    let task = wrapped_up(browser, server, "+15551230021").await;

    browser.fill("the notes", NOTES, "Caller asked about the invoice.").await;
    browser.open(&server.page()).await;
    browser.wait_connected().await;
    browser.wait_xpath("the wrap-up card after the reload", WRAPPING).await;
    assert_eq!(notes_value(browser).await, "Caller asked about the invoice.", "the notes were kept");

    let before = countdown_end(browser).await;
    browser.press_in(WRAPPING, "Extend").await;
    let mut after = before;
    for _ in 0..100 {
        after = countdown_end(browser).await;
        if after != before {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(after - before, 60_000, "Extend adds a minute");
    assert_eq!(notes_value(browser).await, "Caller asked about the invoice.", "extending keeps the notes");

    // Far over what a task's attributes can hold: said at once, nothing sent.
    browser
        .eval(&format!(
            "const n = document.evaluate(\"{NOTES}\", document, null, 9, null).singleNodeValue;\
             n.value = 'x'.repeat(4200); n.dispatchEvent(new Event('input', {{ bubbles: true }})); return null"
        ))
        .await;
    browser.press_in(WRAPPING, "Complete").await;
    browser.wait_text("wrap-up-error", "The notes are too long by").await;
    assert_eq!(server.task_status(&task).await, "wrapping", "nothing was sent");

    browser.fill("the notes", NOTES, "Short now.").await;
    browser.press_in(WRAPPING, "Complete").await;
    browser.wait_gone("the wrap-up card", WRAPPING).await;
    let done = server.admin.fetch_task(&task).await.expect("task");
    assert_eq!(done.attributes_json().expect("attributes")["wrap_up"]["notes"], "Short now.");
    let left = browser
        .eval("return Object.keys(sessionStorage).filter((k) => k.startsWith('trworker.wrapup.')).length")
        .await;
    assert_eq!(left, serde_json::json!(0), "the draft is forgotten once completed");

    scene.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_zero_the_page_completes_the_task_with_the_notes() {
    let Some(scene) = Scene::online_with("wrapup-zero", |c| c.wrap_up = WrapUpPolicy::seconds(4)).await
    else {
        return;
    };
    let Scene { browser, server, .. } = &scene;
    let task = wrapped_up(browser, server, "+15551230022").await;
    browser
        .choose("the disposition", &format!("{WRAPPING}//select[@data-field='disposition']"), "Escalated")
        .await;
    browser.fill("the notes", NOTES, "Passed to billing.").await;

    // The countdown runs out on the page's clock (the server's would complete it 5 s later, without notes).
    browser.wait_gone("the wrap-up card", WRAPPING).await;
    browser
        .wait_text(
            "log",
            "The wrap-up time ran out: the call from +15551230022 was completed with your notes",
        )
        .await;
    let done = server.admin.fetch_task(&task).await.expect("task");
    assert_eq!(done.reason.as_deref(), Some("Completed by the worker"));
    assert_eq!(
        done.attributes_json().expect("attributes")["wrap_up"],
        serde_json::json!({ "disposition": "Escalated", "notes": "Passed to billing." })
    );

    scene.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_room_left_is_shown_and_a_disposition_that_does_not_fit_is_refused_before_sending() {
    let Some(scene) = Scene::online("wrapup-full").await else { return };
    let Scene { browser, server, .. } = &scene;
    let task = wrapped_up(browser, server, "+15551230023").await;

    // The call's own attributes take all but 26 characters of TaskRouter's 4,096.
    let mut attributes = server.admin.fetch_task(&task).await.expect("task").attributes_json().expect("json");
    let used = attributes.to_string().chars().count();
    attributes["padding"] = serde_json::json!("x".repeat(4070 - used - r#","padding":"""#.len()));
    assert_eq!(attributes.to_string().chars().count(), 4070);
    let update = UpdateTask { attributes: Some(attributes), ..Default::default() };
    server.admin.update_task(&task, &update).await.expect("pad the attributes");
    // An update by someone else need not reach the page at once; a reload reads the task as it is now.
    browser.open(&server.page()).await;
    browser.wait_connected().await;
    browser.wait_text("wrap-up-count", "26 characters left").await;

    // `,"wrap_up":{"disposition":"Follow-up needed"}` is 45 characters: said at once, nothing sent.
    let disposition = format!("{WRAPPING}//select[@data-field='disposition']");
    browser.choose("the disposition", &disposition, "Follow-up needed").await;
    browser.wait_text("wrap-up-count", "19 characters too many").await;
    browser.press_in(WRAPPING, "Complete").await;
    browser.wait_text("wrap-up-error", "The disposition does not fit by 19 characters").await;
    assert_eq!(server.task_status(&task).await, "wrapping", "nothing was sent");

    browser.choose("the disposition", &disposition, "").await;
    browser.press_in(WRAPPING, "Complete").await;
    browser.wait_gone("the wrap-up card", WRAPPING).await;
    assert_eq!(server.task_status(&task).await, "completed");

    scene.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notes_typed_while_the_server_is_away_are_kept_and_saved_once_it_is_back() {
    let long = |c: &mut trworker::app::AppConfig| c.wrap_up = WrapUpPolicy::seconds(600);
    let Some(mut scene) = Scene::online_with("wrapup-away", long).await else { return };
    let port = scene.server.addr.port();
    let task = wrapped_up(&scene.browser, &scene.server, "+15551230024").await;

    scene.server.stop().await;
    let browser = &scene.browser;
    browser
        .wait_xpath("the lost connection", "//*[@data-testid='connection'][@data-state!='connected']")
        .await;
    browser.fill("the notes", NOTES, "Typed while the server was away.").await;
    browser.press_in(WRAPPING, "Complete").await;
    browser.wait_text("wrap-up-error", "Your notes are kept on this page").await;
    assert_eq!(notes_value(browser).await, "Typed while the server was away.");

    scene.server = Server::start_with(&scene.dir, port, long).await;
    let Scene { browser, server, .. } = &scene;
    browser.wait_connected().await;
    browser.wait_xpath("the wrap-up card, still there", WRAPPING).await;
    assert_eq!(
        notes_value(browser).await,
        "Typed while the server was away.",
        "the notes outlived the outage"
    );
    browser.press_in(WRAPPING, "Complete").await;
    browser.wait_gone("the wrap-up card", WRAPPING).await;
    let done = server.admin.fetch_task(&task).await.expect("task");
    assert_eq!(
        done.attributes_json().expect("attributes")["wrap_up"]["notes"],
        "Typed while the server was away."
    );

    scene.close().await;
}
