//! The seed's URLs and their plain-text formats.

use crate::helpers::{spawn_app, spawn_app_with, PASSWORD};

#[tokio::test]
async fn activities_come_colon_separated_after_the_workspace_name() {
    let app = spawn_app().await;
    let body = app.served("/getTrActivites.php", "text/plain").await;
    let fields: Vec<&str> = body.split(':').collect();
    assert_eq!(&fields[..2], &["Tiger Support", "workspacefriendlyname"], "{body}");
    assert!(!body.ends_with(':'), "no trailing separator: {body}");
    let pairs: Vec<(&str, &str)> =
        fields[2..].chunks(2).map(|c| (c[0], c.get(1).copied().unwrap_or(""))).collect();
    assert!(pairs.iter().all(|(sid, _)| sid.starts_with("WA")), "{body}");
    let offline = app.activity("Offline").await;
    assert!(pairs.contains(&(offline.as_str(), "Offline")), "{body}");
    assert!(pairs.iter().any(|(_, name)| *name == "Available"), "{body}");
}

#[tokio::test]
async fn generate_token_answers_the_token_or_zero_never_the_password() {
    let app = spawn_app().await;
    let (status, _, token) = app
        .get_text(&format!("/generateTrToken.php?clientid=alice&tokenPassword={}", urlenc(PASSWORD)))
        .await;
    assert_eq!(status, 200);
    let claims = twilio::token::verify_worker_token(
        &token,
        &app.upstream.auth_token,
        engine::Clock::now(app.clock.as_ref()).secs() as u64,
    )
    .expect("a worker token");
    assert_eq!(claims.worker_sid, app.alice);
    for query in
        ["clientid=alice&tokenPassword=guess", "clientid=mallory&tokenPassword=x", "clientid=alice", ""]
    {
        let (status, _, body) = app.get_text(&format!("/generateTrToken.php?{query}")).await;
        assert_eq!(body, "0", "{query}");
        assert_eq!(status, 401, "{query}");
        assert!(!body.contains(PASSWORD));
    }
}

fn urlenc(s: &str) -> String {
    serde_urlencoded::to_string([("v", s)]).expect("encode").trim_start_matches("v=").to_owned()
}

#[tokio::test]
async fn conference_end_and_task_fix_answer_in_the_seeds_words() {
    let app = spawn_app().await;
    assert_eq!(app.get_text("/conferenceEndFn.php").await.2, "0");
    assert_eq!(app.get_text("/taskReservationTaskFix.php").await.2, "0");
    // The token generateTrToken.php issued, as a query parameter (what an old page adds most easily).
    let token = app.sign_in("alice").await;
    let (status, _, body) =
        app.get_text(&format!("/conferenceEndFn.php?conferenceName=no-such-call&token={token}")).await;
    assert_eq!((status, body.as_str()), (200, "Conference not found.\n"));

    let task = app.on_call(&token, &app.alice, "+15551230005").await;
    let conference = task.attributes_json().expect("attributes")["conference"]["sid"]
        .as_str()
        .expect("conference sid")
        .to_owned();

    let (_, _, body) =
        app.get_text(&format!("/taskReservationTaskFix.php?taskSid={}&token={token}", task.sid)).await;
    assert_eq!(body, "Task assignmentStatus: assigned.\n");

    let (status, _, body) =
        app.get_text(&format!("/conferenceEndFn.php?conferenceName={conference}&token={token}")).await;
    assert_eq!((status, body), (200, format!("Ended conference {conference}.\n")));
    app.task_status(&task.sid, "wrapping").await;

    // As a bearer header, the other way to show it.
    let response = app
        .http
        .get(app.url(&format!("/taskReservationTaskFix.php?taskSid={}", task.sid)))
        .bearer_auth(&token)
        .send()
        .await
        .expect("request");
    let body = response.text().await.expect("body");
    assert_eq!(body, "Task assignmentStatus: wrapping.\nTask assignmentStatus set to: completed.\n");
    app.completed_for(&task.sid, "Was stuck in wrapping").await;
}

#[tokio::test]
async fn legacy_actions_need_the_workers_own_token_and_refuse_other_sites() {
    let app = spawn_app().await;
    let alice = app.sign_in("alice").await;
    let bob = app.sign_in("bob").await;
    let task = app.on_call(&alice, &app.alice, "+15551230006").await;
    let fix = format!("/taskReservationTaskFix.php?taskSid={}", task.sid);
    let end = format!("/conferenceEndFn.php?conferenceName={}", task.sid);

    // No token: nothing is read or ended.
    for path in [&fix, &end] {
        let (status, _, body) = app.get_text(path).await;
        assert_eq!((status, body.as_str()), (401, "0"), "{path}");
    }
    // Another worker's token: not theirs.
    for path in [&fix, &end] {
        let (status, _, body) = app.get_text(&format!("{path}&token={bob}")).await;
        assert_eq!((status, body.as_str()), (403, "0"), "{path}");
    }
    // The right token from a page of another site: refused too (they are GETs any page could fire).
    for (header, value) in [("sec-fetch-site", "cross-site"), ("origin", "https://evil.example")] {
        let response = app
            .http
            .get(app.url(&format!("{end}&token={alice}")))
            .header(header, value)
            .send()
            .await
            .expect("request");
        assert_eq!(response.status().as_u16(), 403, "{header}");
    }
    // A malformed SID is the caller's mistake.
    let (status, _, _) =
        app.get_text(&format!("/taskReservationTaskFix.php?taskSid=WTnope&token={alice}")).await;
    assert_eq!(status, 400);
    // The call is still up, the task still assigned.
    assert_eq!(
        app.admin
            .fetch_task(&task.sid)
            .await
            .expect("task")
            .assignment_status
            .map(|s| s.as_str().to_owned())
            .as_deref(),
        Some("assigned")
    );
}

#[tokio::test]
async fn the_open_legacy_mode_is_an_opt_in_that_still_refuses_other_sites() {
    let app = spawn_app_with(|config| config.legacy_open = true).await;
    let (status, _, body) = app.get_text("/conferenceEndFn.php?conferenceName=no-such-call").await;
    assert_eq!(
        (status, body.as_str()),
        (200, "Conference not found.\n"),
        "acts without a token, as the seed"
    );
    let response = app
        .http
        .get(app.url("/conferenceEndFn.php?conferenceName=no-such-call"))
        .header("sec-fetch-site", "cross-site")
        .send()
        .await
        .expect("request");
    assert_eq!(response.status().as_u16(), 403);
}
