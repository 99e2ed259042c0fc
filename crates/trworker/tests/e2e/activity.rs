//! The Activity panel: what happened at the desk in plain words, each line once (a reload doubles none),
//! TaskRouter's raw events behind a disclosure, and a list the keyboard can reach and scroll.

use serde_json::json;

use crate::browser::Browser;
use crate::calls::{pending_from, ring, PENDING};
use crate::oncall::CONFERENCE;
use crate::scene::Scene;

/// The texts of the Activity panel's lines, newest first.
async fn lines(browser: &Browser) -> Vec<String> {
    let value = browser
        .eval("return [...document.querySelectorAll('#log-lines li .log-text')].map((e) => e.textContent)")
        .await;
    value.as_array().into_iter().flatten().map(|v| v.as_str().unwrap_or_default().to_owned()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_activity_panel_speaks_plainly_says_each_thing_once_and_keeps_raw_events_a_click_away() {
    let Some(scene) = Scene::online("activity").await else { return };
    let Scene { browser, server, .. } = &scene;

    ring(browser, server, "+15551230051").await;
    browser.wait_text("log", "Incoming call from +15551230051.").await;
    browser.press_in(&pending_from("+15551230051"), "Accept").await;
    browser.wait_gone("the ringing call", PENDING).await;
    server.advance(3).await;
    browser.wait_xpath("the conference card", CONFERENCE).await;
    browser.wait_text("log", "You accepted the call from +15551230051.").await;
    browser.wait_text("log", "You are now Unavailable.").await;

    let before = lines(browser).await;
    for line in &before {
        let sid = |w: &str| w.trim_matches(|c: char| !c.is_ascii_alphanumeric()).len() == 34;
        assert!(!line.split_whitespace().any(sid), "no SID in the plain lines: {line}");
        assert!(!line.contains("reservation."), "no event type in the plain lines: {line}");
    }
    browser.open(&server.page()).await;
    browser.wait_connected().await;
    browser.wait_xpath("the conference card after the reload", CONFERENCE).await;
    let after = lines(browser).await;
    let mut sorted = after.clone();
    sorted.sort();
    sorted.dedup();
    let stored = browser.eval("return sessionStorage.getItem('trworker.log')").await;
    assert_eq!(sorted.len(), after.len(), "a line came twice after the reload: {after:#?}\n{stored}");
    assert_eq!(after, before, "the reload added or lost lines");

    // The raw events: closed at first, one click opens them, with TaskRouter's event types.
    let raw = "//*[@data-testid='raw-events']";
    assert_eq!(browser.eval("return document.getElementById('raw').open").await, json!(false));
    browser.wait_xpath("Raw events", &format!("{raw}/summary")).await.click().await.expect("open");
    browser
        .wait_xpath(
            "a raw event",
            &format!("{raw}//li[.//*[@class='log-type user-text'][.='reservation.accepted']]"),
        )
        .await;

    // Scrollable lists can take the focus, so that a keyboard can scroll them.
    let focusable = browser
        .eval("return [...document.querySelectorAll('.log-lines')].every((l) => l.tabIndex === 0)")
        .await;
    assert_eq!(focusable, json!(true));

    scene.close().await;
}
