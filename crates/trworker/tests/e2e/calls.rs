//! Calls: one arrives and is accepted, talked through and wrapped up; one is rejected; one rings out.

use twilio::models::Task;

use crate::browser::{literal, Browser};
use crate::scene::Scene;
use crate::server::{Server, WORKER};

/// The pending reservation card (an incoming call).
pub const PENDING: &str = "//*[@data-testid='reservation'][@data-status='pending']";

/// The call once accepted: its card until the conference exists, then the conference card (which takes
/// its place rather than repeating it).
pub const ON_CALL: &str =
    "//*[@data-testid='reservation'][@data-status='accepted'] | //*[@data-testid='conference']";

/// The pending card whose caller is `from`: its heading when the call has no name, else the number under
/// the name.
pub fn pending_from(from: &str) -> String {
    format!(
        "{PENDING}[.//*[@data-testid='caller' or @data-testid='caller-number'][normalize-space(.)={}]]",
        literal(from)
    )
}

/// Places a call from `from` and waits until the page shows it ringing.
pub async fn ring(browser: &Browser, server: &Server, from: &str) -> Task {
    let task = server.call(from, serde_json::json!({})).await;
    browser.wait_xpath(&format!("the incoming call from {from}"), &pending_from(from)).await;
    task
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_is_accepted_then_the_conference_ended_and_the_task_completed() {
    let Some(scene) = Scene::online("accept").await else { return };
    let Scene { browser, server, .. } = &scene;
    assert_eq!(server.worker_activity(WORKER).await, "Available");

    let task = ring(browser, server, "+15551230001").await;
    let card = pending_from("+15551230001");
    browser.wait_xpath("the countdown", &format!("{card}//*[@data-testid='countdown']")).await;

    browser.press_in(&card, "Accept").await;
    browser.wait_gone("the ringing call", &card).await;
    // Accepting makes the worker busy, as in the seed.
    browser.wait_activity("Unavailable").await;
    // The worker's leg answers after the engine's ring delay.
    server.advance(3).await;
    let conference = browser.wait_xpath("the conference card", "//*[@data-testid='conference']").await;
    let sid = conference.attr("data-sid").await.expect("data-sid").unwrap_or_default();
    assert!(sid.starts_with("CF"), "the conference card names its SID: {sid:?}");
    browser
        .wait_xpath("the conference's SID", &format!("//*[@data-testid='conference-sid'][.='{sid}']"))
        .await;
    assert_eq!(server.task_status(&task.sid).await, "assigned");

    browser.press_in("//*[@data-testid='conference']", "End conference").await;
    browser.wait_gone("the conference card", "//*[@data-testid='conference']").await;
    // Wrap-up by default: a minute on the clock, a disposition and notes.
    let wrapping = "//*[@data-testid='reservation'][@data-status='wrapping']";
    browser.wait_xpath("the call in wrap-up", wrapping).await;
    browser
        .wait_xpath("the wrap-up countdown", &format!("{wrapping}//*[@data-testid='wrap-up-countdown'][starts-with(.,'01:0') or starts-with(.,'00:5')]"))
        .await;
    assert_eq!(server.task_status(&task.sid).await, "wrapping");
    browser
        .choose("the disposition", &format!("{wrapping}//select[@data-field='disposition']"), "Resolved")
        .await;
    browser
        .fill("the notes", &format!("{wrapping}//textarea[@data-field='notes']"), "Address updated.")
        .await;

    browser.press_in(wrapping, "Complete").await;
    browser.wait_gone("the wrap-up card", "//*[@data-testid='reservation']").await;
    assert_eq!(server.task_status(&task.sid).await, "completed");
    browser.wait_text("log", "You completed the call from +15551230001 with your notes").await;
    let done = server.admin.fetch_task(&task.sid).await.expect("task");
    let attributes = done.attributes_json().expect("attributes");
    assert_eq!(
        attributes["wrap_up"],
        serde_json::json!({ "disposition": "Resolved", "notes": "Address updated." })
    );

    scene.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_is_rejected() {
    let Some(scene) = Scene::online("reject").await else { return };
    let Scene { browser, server, .. } = &scene;

    let task = server.call("+15551230002", serde_json::json!({})).await;
    let card = pending_from("+15551230002");
    let element = browser.wait_xpath("the incoming call", &card).await;
    let reservation = element.attr("data-sid").await.expect("data-sid").unwrap_or_default();
    assert!(reservation.starts_with("WR"), "the card carries the reservation SID: {reservation:?}");

    browser.press_in(&card, "Reject").await;
    browser
        .wait_gone(
            "the rejected call",
            &format!("//*[@data-testid='reservation'][@data-sid='{reservation}']"),
        )
        .await;
    browser.wait_text("log", "You rejected the call from +15551230002").await;
    let rejected = server.admin.fetch_task_reservation(&task.sid, &reservation).await.expect("reservation");
    assert_eq!(rejected.reservation_status.map(|s| s.as_str().to_owned()).as_deref(), Some("rejected"));

    scene.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unanswered_call_times_out_and_the_worker_shows_unavailable() {
    let Some(scene) = Scene::online("timeout").await else { return };
    let Scene { browser, server, .. } = &scene;

    ring(browser, server, "+15551230003").await;

    // Past the workflow's 10 s reservation timeout: the engine times the reservation out and moves the
    // worker to the workspace's timeout activity.
    server.advance(11).await;
    browser.wait_gone("the timed-out call", PENDING).await;
    browser.wait_activity("Unavailable").await;
    assert_eq!(server.worker_activity(WORKER).await, "Unavailable");
    browser.wait_text("log", "You missed a call from +15551230003").await;
    // Not only a log line: a banner in the call area says so, with the way back.
    browser.wait_text("missed", "You missed a call from +15551230003. You are now Unavailable.").await;
    browser.press_in("//*[@data-testid='missed']", "Go online").await;
    browser.wait_activity("Available").await;
    browser.wait_gone("the missed-call banner", "//*[@data-testid='missed'][not(@hidden)]").await;

    scene.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reject_says_what_comes_next_and_can_go_unavailable() {
    let Some(scene) = Scene::online("reject-away").await else { return };
    let Scene { browser, server, .. } = &scene;

    let task = ring(browser, server, "+15551230012").await;
    let card = pending_from("+15551230012");
    let hint =
        browser.wait_xpath("the reject hint", &format!("{card}//*[contains(@class,'reject-hint')]")).await;
    let hint = hint.text().await.unwrap_or_default();
    assert!(hint.contains("you stay available") && hint.contains("no more calls"), "{hint}");

    browser.press_in(&card, "Reject and go unavailable").await;
    browser.wait_gone("the rejected call", PENDING).await;
    browser.wait_activity("Unavailable").await;
    assert_eq!(server.worker_activity(WORKER).await, "Unavailable");
    let list = server.admin.list_task_reservations(&task.sid, &Default::default()).all().await.expect("list");
    assert!(list.iter().all(|r| r.reservation_status.as_ref().map(|s| s.as_str()) == Some("rejected")));

    scene.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_shows_from_its_event_frame_alone_and_reconciliation_corrects_it() {
    use trworker::app::{EventIntake as _, TaskRouterEvent};
    let Some(scene) = Scene::online("frame").await else { return };
    let Scene { browser, server, .. } = &scene;
    // A first call: the state rebuilt for it teaches the app the workflow's reservation timeout.
    ring(browser, server, "+15551230010").await;

    // A reservation.created that no REST state will ever show: the card can only come from the frame.
    let worker_sid = server.worker_sid(WORKER).await;
    server.state.ingest(TaskRouterEvent {
        event_type: "reservation.created".into(),
        description: "a call only the frame knows".into(),
        worker_sid: Some(worker_sid),
        task_sid: Some("WT0000000000000000000000000000f00d".into()),
        reservation_sid: Some("WR0000000000000000000000000000f00d".into()),
        task_attributes: Some(r#"{"from":"+15550009999","type":"inbound"}"#.into()),
        workflow_sid: Some(server.workflow_sid.clone()),
        ..Default::default()
    });
    let phantom = pending_from("+15550009999");
    browser.wait_xpath("the call from the frame", &phantom).await;
    browser.wait_xpath("its countdown", &format!("{phantom}//*[@data-testid='countdown']")).await;

    // Reconciliation sends the state over REST, which does not have it: the card goes, the real one stays.
    server.state.reconcile().await;
    browser.wait_gone("the call only the frame knew", &phantom).await;
    browser.wait_xpath("the real call", &pending_from("+15551230010")).await;

    scene.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_caller_comes_first_and_the_rest_is_behind_details() {
    let Some(scene) = Scene::online("caller-first").await else { return };
    let Scene { browser, server, .. } = &scene;
    let nested = serde_json::json!({ "a": { "b": ["x".repeat(500)] } });
    server
        .call(
            "+15551230030",
            serde_json::json!({
                "caller_name": "Jane Doe", "selected_product": "Fibre 500", "language": "fr-FR",
                "call_sid": "CA0123456789abcdef0123456789abcdef", "crm": nested,
            }),
        )
        .await;
    let card = pending_from("+15551230030");
    browser
        .wait_xpath(
            "the call headed by the caller's name",
            &format!("{card}//h3[@data-testid='caller'][.='Jane Doe']"),
        )
        .await;
    browser.wait_text("context", "Fibre 500").await;
    browser.wait_text("context", "fr-FR").await;
    browser.wait_xpath("the time waiting", &format!("{card}//*[@data-testid='waiting']")).await;
    let visible = browser.eval("return document.querySelector('[data-testid=reservation]').innerText").await;
    let visible = visible.as_str().unwrap_or_default().to_owned();
    assert!(!visible.contains("CA0123") && !visible.contains("WT") && !visible.contains('{'), "{visible}");
    assert!(!visible.contains("call_sid"), "other attributes wait behind Details: {visible}");
    browser.press_in(&card, "Accept").await;
    server.advance(3).await;
    let conference = "//*[@data-testid='conference']";
    browser
        .wait_xpath("the call with Jane", &format!("{conference}//*[@data-testid='caller'][.='Jane Doe']"))
        .await;
    assert_eq!(browser.count("[data-testid=reservation]").await, 0, "the accepted call is not shown twice");
    let visible = browser.eval("return document.querySelector('[data-testid=conference]').innerText").await;
    let visible = visible.as_str().unwrap_or_default().to_owned();
    assert!(!visible.contains("CF") && !visible.contains("CA0123"), "no SIDs in the main view: {visible}");
    browser.open_details(conference).await;
    let details =
        browser.wait_xpath("crm", &format!("{conference}//dt[.='crm']/following-sibling::dd")).await;
    let shown = details.text().await.expect("text");
    assert!(shown.starts_with("{\"a\"") && shown.ends_with('…') && shown.chars().count() <= 120, "{shown}");
    scene.close().await;
}
