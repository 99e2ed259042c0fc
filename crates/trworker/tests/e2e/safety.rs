//! Task attributes come from callers and integrations: whatever they hold (HTML, nesting, length, right-to-left
//! text, control characters) is shown as text, cut to a sensible length.

use crate::browser::literal;
use crate::calls::pending_from;
use crate::scene::Scene;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn html_in_task_attributes_is_shown_as_text() {
    let Some(scene) = Scene::online("html").await else { return };
    let Scene { browser, server, .. } = &scene;
    browser.eval("window.__xss = 0; return null;").await;

    let from = "<img src=x onerror=alert(1)>";
    let note = "<b>bold</b><script>window.__xss = 1</script><img src=y onerror=\"window.__xss=2\">";
    server.call(from, serde_json::json!({ "note": note })).await;
    let card = browser.wait_xpath("the call from an HTML caller", &pending_from(from)).await;

    let caller = browser.text_of("caller").await;
    assert_eq!(caller, from, "the caller is shown exactly as sent");
    browser.wait_text("attributes", note).await;
    let markup = card.find_all(fantoccini::Locator::Css("img, b, script")).await.expect("query the card");
    assert!(markup.is_empty(), "no element may be made from attribute values ({} found)", markup.len());
    assert_eq!(
        browser.eval("return window.__xss;").await,
        serde_json::json!(0),
        "no script from an attribute may run"
    );

    scene.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nested_long_right_to_left_and_control_values_show_as_cut_text() {
    let Some(scene) = Scene::online("bad-input").await else { return };
    let Scene { browser, server, .. } = &scene;
    crate::axe::emulate(browser, false, true).await;

    let mut nested = serde_json::json!("bottom");
    for _ in 0..40 {
        nested = serde_json::json!({ "level": nested, "list": [1, 2] });
    }
    let name = "مريم العلي";
    let from = "+15551230071";
    let extra = serde_json::json!({
        "caller_name": name,
        "crm": nested,
        "summary": "word ".repeat(500),
        "bell\u{7}key": "tab\there",
    });
    server.call(from, extra).await;
    let card = pending_from(from);
    browser.wait_xpath("the call", &card).await;

    // A right-to-left name reads right to left in its own run; the page's words around it stay put.
    let caller = browser.wait_xpath("the caller", &format!("{card}//*[@data-testid='caller']")).await;
    assert_eq!(caller.text().await.expect("caller"), name);
    assert_eq!(caller.attr("dir").await.expect("dir"), Some("auto".to_owned()));
    let direction = browser
        .eval("return getComputedStyle(document.querySelector('[data-testid=caller]')).direction")
        .await;
    assert_eq!(direction, serde_json::json!("rtl"));
    browser.wait_text("log", &format!("Incoming call from {name}.")).await;

    browser.open_details(&card).await;
    let value = |key: &str| {
        format!("{card}//*[@data-testid='attributes']//dt[.={}]/following-sibling::dd", literal(key))
    };
    // Nested: its JSON as text, cut, and nothing made of it.
    let crm = browser.wait_xpath("the nested attribute", &value("crm")).await;
    let shown = crm.text().await.expect("crm");
    assert!(shown.starts_with("{\"level\":{\"level\":") && shown.ends_with('…'), "{shown}");
    assert!(shown.chars().count() <= 120, "cut: {} characters", shown.chars().count());
    assert!(crm.find_all(fantoccini::Locator::Css("*")).await.expect("children").is_empty());
    // Long: cut the same way, the whole of it in the title.
    let summary = browser.wait_xpath("the long attribute", &value("summary")).await;
    let shown = summary.text().await.expect("summary");
    assert!(shown.ends_with('…') && shown.chars().count() <= 120, "{shown:?}");
    // Controls, in a name or a value, are visible symbols; a tab reads as a space.
    browser.wait_xpath("the control in a name", &value("bell␇key")).await;
    let tab = browser.wait_xpath("the tab in a value", &value("bell␇key")).await;
    assert_eq!(tab.text().await.expect("tab"), "tab here");

    // Nothing is wider than the phone.
    let wide = browser.eval("return document.documentElement.scrollWidth > window.innerWidth").await;
    assert_eq!(wide, serde_json::json!(false), "the page scrolls sideways");

    scene.close().await;
}
