//! The page under its Content-Security-Policy: nothing it does is blocked (sign-in, the WebSocket, a call
//! ringing), and another site cannot show it in a frame.

use std::net::SocketAddr;

use axum::response::Html;
use axum::routing::get;
use axum::Router;
use fantoccini::Locator;
use serde_json::{json, Value};

use crate::browser::Browser;
use crate::calls::pending_from;
use crate::scene::Scene;
use crate::server::{PASSWORD, WORKER};

/// Collects the page's CSP violations into `window.__csp` and counts them on `<html data-csp>`, so a test
/// can wait for one. Those reported while the page loaded, before this ran, come from a buffered
/// `ReportingObserver`, whose `takeRecords` hands them over at once; later ones come as events.
const COLLECT: &str = r#"
window.__csp = [];
const note = (directive, blocked, sample) => {
  window.__csp.push({ directive, blocked: String(blocked || ''), sample: String(sample || '') });
  document.documentElement.dataset.csp = String(window.__csp.length);
};
if (window.ReportingObserver) {
  const earlier = new ReportingObserver(() => {}, { types: ['csp-violation'], buffered: true });
  earlier.observe();
  for (const r of earlier.takeRecords()) note(r.body.effectiveDirective, r.body.blockedURL, r.body.sample);
  earlier.disconnect();
}
document.addEventListener('securitypolicyviolation', (e) => note(e.effectiveDirective, e.blockedURI, e.sample));
document.documentElement.dataset.csp = String(window.__csp.length);
return null;
"#;

/// The violations recorded so far.
async fn violations(browser: &Browser) -> Value {
    browser.eval("return window.__csp;").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_signs_in_connects_and_rings_without_a_csp_violation() {
    let Some(scene) = Scene::at_sign_in("csp").await else { return };
    let Scene { browser, server, .. } = &scene;
    browser.eval(COLLECT).await;

    // Sign-in (fetch), the live connection (WebSocket to /api/ws), going online, and a call ringing.
    browser.sign_in_ok(WORKER, PASSWORD).await;
    browser.press("Go online").await;
    browser.wait_activity("Available").await;
    server.call("+15551230101", json!({ "note": "under the policy" })).await;
    browser.wait_xpath("the incoming call", &pending_from("+15551230101")).await;
    browser.wait_xpath("the ring tone on", "//body[@data-ringing='true']").await;
    // The ring tone's AudioContext runs (the page hides "Enable sound" only then).
    browser.wait_xpath("sound allowed", "//button[@id='sound-button'][@hidden]").await;
    assert_eq!(violations(browser).await, json!([]), "the page must run under its CSP without a violation");

    // The collector does see a violation: an inline style, as an attribute, is one.
    browser
        .eval("document.body.append(Object.assign(document.createElement('div'), { id: 'probe' })); document.getElementById('probe').setAttribute('style', 'color: red'); return null;")
        .await;
    browser.wait_xpath("the probe's violation", "/html[@data-csp='1']").await;
    let seen = violations(browser).await;
    assert_eq!(seen[0]["directive"], "style-src-attr", "{seen}");

    scene.close().await;
}

/// A page of another origin (another port) that frames `app` and a plain form of its own, and marks
/// `<body data-framed>` with how many of its frames have loaded.
fn framing_page(app: &str) -> String {
    format!(
        r#"<!doctype html><html><body data-framed="0">
<iframe id="app" src="{app}/"></iframe>
<iframe id="own" src="/form"></iframe>
<script>
for (const frame of document.querySelectorAll('iframe')) {{
  frame.addEventListener('load', () => {{
    document.body.dataset.framed = String(Number(document.body.dataset.framed) + 1);
  }});
}}
</script>
</body></html>"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_site_cannot_show_the_sign_in_form_in_a_frame() {
    let Some(scene) = Scene::open("frame").await else { return };
    let Scene { browser, server, .. } = &scene;

    let page = framing_page(&server.base);
    let other = Router::new()
        .route("/", get(move || async move { Html(page) }))
        .route("/form", get(|| async { Html("<form><input id=\"identity\"></form>") }));
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .expect("bind the other site");
    let other_url = format!("http://{}/", listener.local_addr().expect("address"));
    let site = tokio::spawn(async move { axum::serve(listener, other).await });

    browser.open(&other_url).await;
    browser.wait_xpath("both frames loaded", "//body[@data-framed='2']").await;

    // The other site's own frame shows its form: finding a field in a frame works.
    let own = browser.client.find(Locator::Css("#own")).await.expect("the own frame");
    own.enter_frame().await.expect("enter the own frame");
    assert_eq!(browser.count("#identity").await, 1, "the other site's own form is found in its frame");
    browser.client.enter_parent_frame().await.expect("back to the page");

    // The app's frame was refused: no sign-in form, nothing of the page.
    let app = browser.client.find(Locator::Css("#app")).await.expect("the app frame");
    app.enter_frame().await.expect("enter the app frame");
    assert_eq!(
        browser.count("#identity, #password, #signin-form").await,
        0,
        "the sign-in form rendered in a frame"
    );
    let text = browser.eval("return document.body ? document.body.innerText : '';").await;
    assert!(!text.as_str().unwrap_or("").contains("Sign in"), "the app rendered in a frame: {text}");
    browser.client.enter_parent_frame().await.expect("back to the page");

    site.abort();
    scene.close().await;
}
