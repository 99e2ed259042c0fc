//! axe-core over every state of the page (signed out, signed in offline, online idle, ringing, on the call
//! with the caller held and the worker muted, wrap-up, the missed-call banner), each in light and dark, on a
//! desktop (1280×800) and a phone (390×844): any violation fails the test.
//!
//! axe-core is the npm package pinned in `tests/axe/package.json`, installed by `.ci/run` (`npm ci` there),
//! which sets `AXE_CORE_JS` to its `axe.min.js`; without the variable, that same path in this checkout. When
//! the file is missing the test skips, as the browser tests do without chromedriver, unless `E2E_REQUIRED=1`.
//! Colour scheme and viewport are emulated over chromedriver's DevTools endpoint, so one page goes through
//! all four looks without a reload.

use std::path::PathBuf;

use axum::http::Method;
use fantoccini::wd::WebDriverCompatibleCommand;
use reqwest::Url;
use serde_json::{json, Value};

use crate::browser::Browser;
use crate::calls::{pending_from, ring, PENDING};
use crate::oncall::CONFERENCE;
use crate::scene::Scene;
use crate::server::{Server, PASSWORD, WORKER};

const SKIP: &str = "skipping: axe-core not installed (cd tests/axe && npm ci)";

/// axe-core's source, or `None` (after saying why) when it is not installed and the test may skip.
pub fn axe_or_skip() -> Option<String> {
    let path =
        std::env::var_os("AXE_CORE_JS").filter(|p| !p.is_empty()).map(PathBuf::from).unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/axe/node_modules/axe-core/axe.min.js")
        });
    match std::fs::read_to_string(&path) {
        Ok(source) => Some(source),
        Err(e) => {
            let required = std::env::var("E2E_REQUIRED").is_ok_and(|v| v == "1");
            assert!(!required, "E2E_REQUIRED=1 but axe-core is missing at {} ({e}): {SKIP}", path.display());
            println!("{SKIP}");
            None
        }
    }
}

/// `url::ParseError`, which no crate this test depends on re-exports.
type UrlError = <Url as std::str::FromStr>::Err;

/// A DevTools command through chromedriver (`POST /session/{id}/goog/cdp/execute`).
#[derive(Debug)]
struct Cdp {
    cmd: &'static str,
    params: Value,
}

impl WebDriverCompatibleCommand for Cdp {
    fn endpoint(&self, base_url: &Url, session_id: Option<&str>) -> Result<Url, UrlError> {
        base_url.join(&format!("session/{}/goog/cdp/execute", session_id.unwrap_or_default()))
    }

    fn method_and_body(&self, _: &Url) -> (Method, Option<String>) {
        (Method::POST, Some(json!({ "cmd": self.cmd, "params": self.params }).to_string()))
    }
}

/// How the page is looked at: colour scheme and viewport.
#[derive(Debug, Clone, Copy)]
struct Look {
    dark: bool,
    phone: bool,
}

impl Look {
    /// Every look, ending on the desktop in light, where the scenario goes on.
    const ALL: [Look; 4] = [
        Look { dark: true, phone: true },
        Look { dark: false, phone: true },
        Look { dark: true, phone: false },
        Look { dark: false, phone: false },
    ];

    fn name(self) -> String {
        format!(
            "{}, {}",
            if self.dark { "dark" } else { "light" },
            if self.phone { "phone 390×844" } else { "desktop 1280×800" }
        )
    }
}

async fn cdp(browser: &Browser, cmd: &'static str, params: Value) {
    if let Err(e) = browser.client.issue_cmd(Cdp { cmd, params }).await {
        panic!("DevTools {cmd}: {e}");
    }
}

/// Makes the page dark or light, on a phone or a desktop.
pub async fn emulate(browser: &Browser, dark: bool, phone: bool) {
    let scheme = if dark { "dark" } else { "light" };
    cdp(
        browser,
        "Emulation.setEmulatedMedia",
        json!({ "features": [{ "name": "prefers-color-scheme", "value": scheme }] }),
    )
    .await;
    let (width, height, scale) = if phone { (390, 844, 3) } else { (1280, 800, 1) };
    let metrics = json!({ "width": width, "height": height, "deviceScaleFactor": scale, "mobile": phone });
    cdp(browser, "Emulation.setDeviceMetricsOverride", metrics).await;
}

/// Runs axe-core on the page as it is, in every look; the violations found, described.
pub async fn audit(browser: &Browser, axe: &str, state: &str) -> Vec<String> {
    let mut found = Vec::new();
    for look in Look::ALL {
        emulate(browser, look.dark, look.phone).await;
        let loaded = browser.eval("return typeof window.axe").await;
        if loaded != json!("object") {
            let script = format!("{axe}\n;return typeof window.axe");
            let loaded = browser.eval(&script).await;
            assert_eq!(loaded, json!("object"), "axe-core did not load");
        }
        let script = "const done = arguments[arguments.length - 1];\
            window.axe.run(document, { resultTypes: ['violations'] })\
              .then((r) => done(r.violations.map((v) => ({ id: v.id, help: v.help,\
                nodes: v.nodes.map((n) => n.target.join(' ') + ': ' + (n.failureSummary || '').replace(/\\s+/g, ' ')) }))))\
              .catch((e) => done([{ id: 'axe-error', help: String(e), nodes: [] }]));";
        let result = browser.client.execute_async(script, Vec::new()).await.expect("axe.run");
        for violation in result.as_array().into_iter().flatten() {
            let nodes: Vec<String> = violation["nodes"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|n| format!("      {}", n.as_str().unwrap_or_default()))
                .collect();
            found.push(format!(
                "{state} ({}): {} — {}\n{}",
                look.name(),
                violation["id"].as_str().unwrap_or_default(),
                violation["help"].as_str().unwrap_or_default(),
                nodes.join("\n")
            ));
        }
    }
    found
}

/// As [`on_call`], auditing the page while the call rings.
async fn on_call_audited(browser: &Browser, server: &Server, from: &str, found: &mut Vec<String>, axe: &str) {
    ring(browser, server, from).await;
    found.extend(audit(browser, axe, "ringing").await);
    browser.press_in(&pending_from(from), "Accept").await;
    browser.wait_gone("the ringing call", PENDING).await;
    server.advance(3).await;
    browser.wait_xpath("the conference card", CONFERENCE).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn axe_finds_no_violation_in_any_state_look_or_size() {
    let Some(axe) = axe_or_skip() else { return };
    let Some(scene) = Scene::at_sign_in("axe").await else { return };
    let Scene { browser, server, .. } = &scene;
    let mut found = audit(browser, &axe, "signed out").await;

    browser.sign_in_ok(WORKER, PASSWORD).await;
    browser.wait_activity("Offline").await;
    // The raw events are audited too: open their disclosure once, it stays open.
    browser
        .wait_xpath("Raw events", "//*[@data-testid='raw-events']/summary")
        .await
        .click()
        .await
        .expect("open");
    found.extend(audit(browser, &axe, "signed in, offline").await);

    browser.press("Go online").await;
    browser.wait_activity("Available").await;
    found.extend(audit(browser, &axe, "online, idle").await);

    on_call_audited(browser, server, "+15551230041", &mut found, &axe).await;
    found.extend(audit(browser, &axe, "on the call").await);
    browser.press_in(CONFERENCE, "Hold caller").await;
    browser.press_in(CONFERENCE, "Mute").await;
    browser.wait_text("call-state", "You are muted.").await;
    found.extend(audit(browser, &axe, "on the call, caller held, muted").await);

    browser.press_in(CONFERENCE, "End conference").await;
    let wrapping = "//*[@data-testid='reservation'][@data-status='wrapping']";
    browser.wait_xpath("the wrap-up card", wrapping).await;
    found.extend(audit(browser, &axe, "wrap-up").await);
    browser.press_in(wrapping, "Complete").await;
    browser.wait_gone("the wrap-up card", wrapping).await;

    browser.press("Go online").await;
    browser.wait_activity("Available").await;
    ring(browser, server, "+15551230043").await;
    server.advance(11).await;
    browser.wait_text("missed", "You missed a call from +15551230043").await;
    found.extend(audit(browser, &axe, "missed-call banner").await);

    assert!(found.is_empty(), "axe-core found {} violation(s):\n{}", found.len(), found.join("\n"));
    scene.close().await;
}
