//! On a phone (390×844): the call's buttons are above the fold when it rings, on the call and in wrap-up;
//! attribute names are not broken mid-word; after Complete the page is back at its top.

use serde_json::json;

use crate::axe::emulate;
use crate::browser::{literal, Browser};
use crate::calls::{pending_from, PENDING};
use crate::oncall::CONFERENCE;
use crate::scene::Scene;

/// Asserts that the button `label` under `scope` is entirely in the first screen of the page, with the page
/// scrolled to its top (as a call arriving finds it).
async fn above_the_fold(browser: &Browser, scope: &str, label: &str) {
    let xpath = format!("{scope}//button[normalize-space(.)={}]", literal(label));
    browser.wait_xpath(label, &xpath).await;
    let script = format!(
        "window.scrollTo(0, 0);\
         const b = document.evaluate({}, document, null, 9, null).singleNodeValue;\
         const r = b.getBoundingClientRect();\
         return {{ bottom: r.bottom + window.scrollY, fold: window.innerHeight, width: window.innerWidth }}",
        json!(xpath)
    );
    let at = browser.eval(&script).await;
    assert_eq!(at["width"], json!(390), "the phone's viewport: {at}");
    let (bottom, fold) = (at["bottom"].as_f64().unwrap_or(f64::MAX), at["fold"].as_f64().unwrap_or(0.0));
    assert!(bottom <= fold, "{label:?} ends at {bottom}px, below the fold at {fold}px");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_phone_the_call_buttons_are_above_the_fold_and_complete_goes_back_to_the_top() {
    let Some(scene) = Scene::online("phone").await else { return };
    let Scene { browser, server, .. } = &scene;
    emulate(browser, false, true).await;

    // A caller with a name, a product, a language and long attribute names: the fullest ringing card.
    let extra = json!({
        "caller_name": "Jane Doe",
        "product": "Home insurance",
        "language": "English",
        "conversation_identifier": "c-1",
        "customer_account_reference": "ACC-42",
    });
    server.call("+15551230061", extra).await;
    let card = pending_from("+15551230061");
    // The fullest card: with the queue's name, which a state adds.
    let queue = "//*[@data-testid='context'][contains(., 'support')]";
    browser.wait_xpath("the incoming call", &format!("{card}{queue}")).await;
    for label in ["Accept", "Reject"] {
        above_the_fold(browser, &card, label).await;
    }

    // Attribute names, behind Details, are whole words on their lines.
    browser.open_details(&card).await;
    let broken = browser
        .eval(
            "return [...document.querySelectorAll('[data-testid=\"attributes\"] dt')].filter((dt) => {\
               const range = document.createRange();\
               range.selectNodeContents(dt);\
               const tops = new Set([...range.getClientRects()].map((r) => Math.round(r.top)));\
               return tops.size > 1;\
             }).map((dt) => dt.textContent)",
        )
        .await;
    assert_eq!(broken, json!([]), "attribute names broken over lines");

    browser.press_in(&card, "Accept").await;
    browser.wait_gone("the ringing call", PENDING).await;
    server.advance(3).await;
    browser.wait_xpath("the conference card", &format!("{CONFERENCE}{queue}")).await;
    above_the_fold(browser, CONFERENCE, "End conference").await;

    browser.press_in(CONFERENCE, "End conference").await;
    let wrapping = "//*[@data-testid='reservation'][@data-status='wrapping']";
    browser.wait_xpath("the wrap-up card", &format!("{wrapping}{queue}")).await;
    above_the_fold(browser, wrapping, "Complete").await;

    // Scrolled down to the end of the page, Complete brings the worker back to the top.
    browser.eval("window.scrollTo(0, document.body.scrollHeight); return null").await;
    assert_ne!(browser.eval("return window.scrollY").await, json!(0), "the page scrolls on a phone");
    browser.press_in(wrapping, "Complete").await;
    browser.wait_gone("the wrap-up card", wrapping).await;
    let mut top = json!(null);
    for _ in 0..600 {
        top = browser.eval("return window.scrollY").await;
        if top == json!(0) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(top, json!(0), "after Complete the page is back at its top");

    scene.close().await;
}
