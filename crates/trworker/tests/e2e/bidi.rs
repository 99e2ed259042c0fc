//! Text from callers is shown as sent: a direction override (U+202E) cannot reverse a caller's number,
//! control characters are visible, and a very long value is cut (the whole of it in the `title`).

use serde_json::{json, Value};

use crate::browser::Browser;
use crate::calls::pending_from;
use crate::scene::Scene;

/// Every direction control the page must not display.
const BIDI: &str = r"/[\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069]/";

/// Whether the characters of the first element matching `css` are laid out left to right, one after the
/// other, as they are in the text (a reversed number would have them right to left).
async fn reads_left_to_right(browser: &Browser, css: &str) -> Value {
    let script = format!(
        r#"const el = document.querySelector({css:?});
const node = el.firstChild;
const range = document.createRange();
const lefts = [];
for (let i = 0; i < node.length; i += 1) {{
  range.setStart(node, i);
  range.setEnd(node, i + 1);
  lefts.push(range.getBoundingClientRect().left);
}}
return lefts.every((x, i) => i === 0 || x > lefts[i - 1]);"#
    );
    browser.eval(&script).await
}

/// Whether anything the page shows (text or tooltips) holds a direction control.
async fn shows_bidi(browser: &Browser) -> Value {
    let script = format!(
        "const bidi = {BIDI}; return bidi.test(document.body.innerText) || \
         [...document.querySelectorAll('[title]')].some((el) => bidi.test(el.title));"
    );
    browser.eval(&script).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn direction_overrides_and_controls_in_a_call_are_not_displayed() {
    let Some(scene) = Scene::online("bidi").await else { return };
    let Scene { browser, server, .. } = &scene;

    let number = "+15551230102";
    // Shown raw, the override would display the number as "2010321555".
    let from = format!("\u{202E}{number}\u{202C}");
    let long = format!("\u{2067}{}", "7".repeat(2000));
    let name = "\u{202E}Alice\u{2069}\u{200F} \u{7}bell\u{85}next";
    server.call(&from, json!({ "caller_name": name, "account": long })).await;

    let card = browser.wait_xpath("the call, its caller as sent", &pending_from(number)).await;
    // Caller first: the name is the heading, the number under it. (Before issue 24 the heading was the
    // number and the name an attribute in the table.)
    assert_eq!(browser.text_of("caller-number").await, number);
    assert_eq!(reads_left_to_right(browser, "[data-testid='caller-number']").await, json!(true));
    let isolated = browser
        .eval("return getComputedStyle(document.querySelector('[data-testid=caller-number]')).unicodeBidi;")
        .await;
    assert_eq!(isolated, json!("isolate"), "the number is isolated from the text around it");

    // Control characters are visible symbols; the override is gone.
    let caller = browser.text_of("caller").await;
    assert_eq!(caller, "Alice ␇bell\u{FFFD}next");
    // The long value is cut, with the whole of it (less the controls) in the title; it is behind "Details".
    card.find(fantoccini::Locator::XPath(".//summary[.='Details']"))
        .await
        .expect("Details")
        .click()
        .await
        .expect("open Details");
    let account = card
        .find(fantoccini::Locator::XPath(".//dt[.='account']/following-sibling::dd"))
        .await
        .expect("the account attribute");
    let shown = account.text().await.expect("shown text");
    assert!(shown.ends_with('…') && shown.chars().count() <= 120, "cut: {shown:?}");
    let title = account.attr("title").await.expect("title").unwrap_or_default();
    assert_eq!(title, "7".repeat(2000), "the whole value, without the isolate, is in the title");

    assert_eq!(shows_bidi(browser).await, json!(false), "a direction control is displayed");

    browser.press_in(&pending_from(number), "Reject").await;
    // The log names the caller as the card does: by name (before issue 24, by number).
    browser.wait_text("log", "You rejected the call from Alice").await;
    assert_eq!(shows_bidi(browser).await, json!(false), "a direction control is displayed in the log");

    scene.close().await;
}
