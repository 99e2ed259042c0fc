//! Task attributes come from callers and integrations: whatever HTML they hold is shown as text.

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
