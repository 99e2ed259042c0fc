//! On the call: the caller held and resumed, the worker muted and unmuted, with toggles whose pressed state
//! follows the engine's conference (after a reload too), beside the call timer and "End conference"; and
//! nobody but the worker who accepted the call can hold or mute it.

use serde_json::{json, Value};
use twilio::models::Participant;

use crate::browser::{literal, Browser};
use crate::calls::{pending_from, ring};
use crate::scene::Scene;
use crate::server::{DataDir, Server, PASSWORD, WORKER};

/// The conference card.
pub const CONFERENCE: &str = "//*[@data-testid='conference']";

/// Rings a call from `from`, accepts it and lets the worker's leg answer: the page shows the conference
/// card, whose SID this returns.
pub async fn on_call(browser: &Browser, server: &Server, from: &str) -> String {
    ring(browser, server, from).await;
    browser.press_in(&pending_from(from), "Accept").await;
    // The worker's leg answers after the engine's ring delay.
    server.advance(3).await;
    let card = browser.wait_xpath("the conference card", CONFERENCE).await;
    card.attr("data-sid").await.expect("data-sid").unwrap_or_default()
}

/// The toggle `label` of the conference card, pressed or not.
fn toggle(label: &str, pressed: bool) -> String {
    format!("{CONFERENCE}//button[normalize-space(.)={}][@aria-pressed='{pressed}']", literal(label))
}

/// The conference's leg labelled `label` (`worker` or `customer`), read from the engine.
async fn leg(server: &Server, conference: &str, label: &str) -> Participant {
    let legs =
        server.admin.list_participants(conference, &Default::default()).all().await.expect("participants");
    legs.into_iter().find(|p| p.label.as_deref() == Some(label)).expect("the leg")
}

/// The conference's caller's and worker's legs, read from the engine.
async fn legs(server: &Server, conference: &str) -> (Participant, Participant) {
    (leg(server, conference, "customer").await, leg(server, conference, "worker").await)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_holds_and_resumes_the_caller_and_mutes_and_unmutes_itself() {
    let Some(scene) = Scene::online("on-call").await else { return };
    let Scene { browser, server, .. } = &scene;
    let conference = on_call(browser, server, "+15551230031").await;
    browser.wait_xpath("the call timer", &format!("{CONFERENCE}//*[@data-testid='call-timer']")).await;
    browser.wait_xpath("Hold caller, not pressed", &toggle("Hold caller", false)).await;
    browser.wait_xpath("Mute, not pressed", &toggle("Mute", false)).await;

    browser.press_in(CONFERENCE, "Hold caller").await;
    browser.wait_xpath("Hold caller, pressed", &toggle("Hold caller", true)).await;
    browser.wait_text("call-state", "The caller is on hold.").await;
    let (customer, worker) = legs(server, &conference).await;
    assert_eq!((customer.hold, worker.hold), (Some(true), Some(false)), "only the caller is held");

    browser.press_in(CONFERENCE, "Mute").await;
    browser.wait_xpath("Mute, pressed", &toggle("Mute", true)).await;
    browser.wait_text("call-state", "You are muted.").await;
    let (customer, worker) = legs(server, &conference).await;
    assert_eq!((customer.muted, worker.muted), (Some(false), Some(true)), "only the worker is muted");

    // A reload reads both back from the conference.
    browser.open(&server.page()).await;
    browser.wait_connected().await;
    browser.wait_xpath("Hold caller, pressed after the reload", &toggle("Hold caller", true)).await;
    browser.wait_xpath("Mute, pressed after the reload", &toggle("Mute", true)).await;

    browser.press_in(CONFERENCE, "Hold caller").await;
    browser.wait_xpath("Hold caller, released", &toggle("Hold caller", false)).await;
    assert_eq!(leg(server, &conference, "customer").await.hold, Some(false), "the caller is back");
    browser.press_in(CONFERENCE, "Mute").await;
    browser.wait_xpath("Mute, released", &toggle("Mute", false)).await;
    assert_eq!(leg(server, &conference, "worker").await.muted, Some(false), "the worker is heard again");
    browser.wait_gone("the call state line", "//*[@data-testid='call-state'][normalize-space(.)!='']").await;
    browser.wait_text("log", "You put the caller on hold").await;
    browser.wait_text("log", "You unmuted your line").await;

    // The call timer and "End conference" are still there, and the call ends into wrap-up.
    browser.press_in(CONFERENCE, "End conference").await;
    browser.wait_xpath("the wrap-up card", "//*[@data-testid='reservation'][@data-status='wrapping']").await;

    scene.close().await;
}

/// `POST path` with `token` and a JSON body: status and JSON answer.
async fn post(http: &reqwest::Client, server: &Server, path: &str, token: &str, body: Value) -> (u16, Value) {
    let response = http
        .post(format!("{}{path}", server.base))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .expect("request");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn token(http: &reqwest::Client, server: &Server, identity: &str) -> String {
    let (status, body) =
        post(http, server, "/api/token", "", json!({ "identity": identity, "password": PASSWORD })).await;
    assert_eq!(status, 200, "{body}");
    body["token"].as_str().expect("token").to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_worker_who_accepted_the_call_holds_or_mutes_it() {
    let dir = DataDir::new("on-call-own");
    let server = Server::start(&dir, 0).await;
    let http = reqwest::Client::new();
    let charles = token(&http, &server, WORKER).await;
    let linus = token(&http, &server, "linus").await;
    let available = server.activity_sid("Available").await;
    let (status, body) =
        post(&http, &server, "/api/worker/activity", &charles, json!({ "activity_sid": available })).await;
    assert_eq!(status, 200, "{body}");
    let task = server.call("+15551230032", json!({})).await;
    let reservations = server
        .admin
        .list_task_reservations(&task.sid, &Default::default())
        .all()
        .await
        .expect("reservations");
    let reservation = reservations.first().expect("a reservation for charles").sid.clone();

    let hold = format!("/api/conferences/{}/hold", task.sid);
    let (status, body) =
        post(&http, &server, &format!("/api/reservations/{reservation}/accept"), &charles, json!({})).await;
    assert_eq!(status, 200, "{body}");
    server.advance(3).await;

    for (path, body) in [
        (hold.clone(), json!({ "hold": true })),
        (format!("/api/conferences/{}/mute", task.sid), json!({ "muted": true })),
    ] {
        let (status, answer) = post(&http, &server, &path, &linus, body).await;
        assert_eq!(status, 403, "{path}: {answer}");
    }
    let (status, answer) = post(&http, &server, &hold, &charles, json!({})).await;
    assert_eq!(status, 400, "a hold must say which way: {answer}");
    let (status, answer) = post(&http, &server, &hold, &charles, json!({ "hold": true })).await;
    assert_eq!(status, 200, "{answer}");
    let customer =
        answer["participants"].as_array().and_then(|legs| legs.iter().find(|p| p["role"] == "customer"));
    assert_eq!(customer.map(|p| p["hold"].clone()), Some(json!(true)), "{answer}");

    server.stop().await;
}
