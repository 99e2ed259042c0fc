//! The supervisor page with 200 more workers: sign-in, sort, filter, a change made behind the page's back
//! showing live, a call being offered, and "Set activity".

use serde_json::{json, Value};
use twilio::client::taskrouter::{CreateWorker, UpdateWorker};

use crate::browser::{literal, Browser};
use crate::scene::Scene;

/// The added workers: `agent-001` to `agent-200`.
const AGENTS: usize = 200;

/// The names in the workers table, top to bottom.
async fn names(browser: &Browser) -> Vec<String> {
    let value = browser
        .eval("return [...document.querySelectorAll('#workers tr th')].map((e) => e.textContent)")
        .await;
    value.as_array().into_iter().flatten().map(|v| v.as_str().unwrap_or_default().to_owned()).collect()
}

/// The XPath of the row of the worker `sid` whose cell `class` reads `text`.
fn cell(sid: &str, class: &str, text: &str) -> String {
    format!(
        "//tr[@data-sid='{sid}']/*[contains(@class,'{class}')][contains(normalize-space(.), {})]",
        literal(text)
    )
}

async fn sort_by(browser: &Browser, key: &str) {
    let button = browser.wait_xpath(key, &format!("//button[@data-sort='{key}']")).await;
    button.click().await.unwrap_or_else(|e| panic!("sort by {key}: {e}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_workers_sorted_filtered_live_and_set_offline() {
    let Some(scene) = Scene::open("supervisor").await else { return };
    let Scene { browser, server, .. } = &scene;
    let offline = server.activity_sid("Offline").await;
    for n in 1..=AGENTS {
        server
            .admin
            .create_worker(&CreateWorker {
                friendly_name: format!("agent-{n:03}"),
                activity_sid: Some(offline.clone()),
                attributes: Some(
                    json!({ "skills": ["support"], "contact_uri": format!("client:agent-{n:03}") }),
                ),
            })
            .await
            .expect("create worker");
    }
    let total = server.admin.list_workers(&Default::default()).all().await.expect("workers").len();
    assert!(total > AGENTS);
    let password = server.state.config().supervisor_password.clone();

    browser.open(&format!("{}/supervisor", server.base)).await;
    browser.wait_xpath("the sign-in form", "//*[@id='signin'][not(@hidden)]").await;
    let axe = crate::axe::axe_or_skip();
    let mut found = Vec::new();
    if let Some(axe) = &axe {
        found.extend(crate::axe::audit(browser, axe, "supervisor, signed out").await);
    }
    browser.fill("the name", "//input[@id='name']", "Grace").await;
    browser.fill("the password", "//input[@id='password']", &password).await;
    browser.press("Sign in").await;
    browser.wait_connected().await;
    browser.wait_text("worker-count", &format!("{total} of {total} workers shown")).await;
    let shown = names(browser).await;
    let mut sorted = shown.clone();
    sorted.sort();
    assert_eq!(shown, sorted, "by name at first");

    // Sort: by name descending, then by time in activity.
    sort_by(browser, "name").await;
    browser.wait_xpath("name descending", "//th[@data-key='name'][@aria-sort='descending']").await;
    assert_eq!(names(browser).await.first(), sorted.last());
    sort_by(browser, "since").await;
    browser.wait_xpath("time in activity", "//th[@data-key='since'][@aria-sort='ascending']").await;
    let order = browser
        .eval(
            "return [...document.querySelectorAll('#workers tr')].map((tr) => tr.querySelector('.since').textContent)",
        )
        .await;
    assert_eq!(order.as_array().map(Vec::len), Some(total), "{order}");

    // Filter by name: ten of the agents.
    browser.fill("the filter", "//input[@id='filter-text']", "agent-01").await;
    browser.wait_text("worker-count", &format!("10 of {total} workers shown")).await;
    assert!(names(browser).await.iter().all(|n| n.starts_with("agent-01")));

    // A change behind the page's back shows live, filtered rows included.
    let agent = server.worker_sid("agent-015").await;
    let available = server.activity_sid("Available").await;
    let update = UpdateWorker { activity_sid: Some(available.clone()), ..UpdateWorker::default() };
    server.admin.update_worker(&agent, &update).await.expect("agent-015 available");
    browser.wait_xpath("agent-015 available", &cell(&agent, "activity", "Available")).await;
    browser.wait_text("total-available", "1").await;

    // Filter by activity: only agent-015 is Available.
    browser.fill("the filter", "//input[@id='filter-text']", "").await;
    browser.choose("the activity filter", "//select[@id='filter-activity']", &available).await;
    browser.wait_text("worker-count", &format!("1 of {total} workers shown")).await;

    // The details of agent-015 are open when a call is offered to it, the one available worker: the
    // caller shows in the Offered column and in its recent reservations.
    let manage = format!("//tr[@data-sid='{agent}']//button[@aria-label='Manage agent-015']");
    browser.wait_xpath("Manage agent-015", &manage).await.click().await.expect("manage");
    browser
        .wait_xpath("the details", "//*[@id='detail'][not(@hidden)]//h2[normalize-space(.)='agent-015']")
        .await;
    browser.wait_text("reservations", "No reservations yet.").await;
    server.call("+15550100222", Value::Null).await;
    browser.wait_xpath("the offered call", &cell(&agent, "pending", "+15550100222")).await;
    browser.wait_text("total-waiting", "1").await;
    browser
        .wait_xpath(
            "a recent reservation",
            "//*[@data-testid='reservations']//td[normalize-space(.)='+15550100222']",
        )
        .await;

    // Set activity: agent-015 goes Offline from the page.
    browser.choose("the activity", "//select[@id='activity-select']", &offline).await;
    browser.press("Set activity").await;
    browser.wait_text("activity-result", "agent-015 is now Offline.").await;
    if let Some(axe) = &axe {
        found.extend(crate::axe::audit(browser, axe, "supervisor, a worker's details open").await);
    }
    assert!(found.is_empty(), "axe-core found {} violation(s):\n{}", found.len(), found.join("\n"));
    assert_eq!(server.worker_activity("agent-015").await, "Offline");
    browser.wait_text("worker-count", &format!("0 of {total} workers shown")).await;
    browser.choose("the activity filter", "//select[@id='filter-activity']", &offline).await;
    browser.wait_xpath("agent-015 offline", &cell(&agent, "activity", "Offline")).await;

    // The connection is lost (the server going away): the last picture stays, marked as stale.
    server.state.shutdown();
    browser.wait_xpath("reconnecting", "//*[@data-testid='connection'][@data-state='reconnecting']").await;
    browser.wait_text("stale", "Reconnecting… Showing the last known picture").await;
    assert_eq!(browser.eval("return document.body.classList.contains('is-stale')").await, json!(true));
    assert!(browser.count("#workers tr").await > 0, "the last picture is still shown");

    scene.close().await;
}
