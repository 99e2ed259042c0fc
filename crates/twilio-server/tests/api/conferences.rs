//! API 2010 Conferences: relative URIs, RFC 2822 dates, the flat envelope, ending a conference.

use super::helpers::*;

#[tokio::test]
async fn conference_from_a_conference_instruction_can_be_listed_and_ended() {
    let app = spawn_app().await;
    let (ws, _, _carol) = app.staffed_centre(["carol"]).await;
    // A voice task, as Twilio requires for the conference instruction: the customer's call and number.
    let attributes = r#"{"type":"support","call_sid":"CA00000000000000000000000000000abc","to":"+15550002"}"#;
    let task =
        app.post_expecting(&format!("/v1/Workspaces/{ws}/Tasks"), &[("Attributes", attributes)], 201).await;
    let task_sid = task["sid"].as_str().unwrap();
    let res = app.first_reservation(&ws, task_sid).await;
    let conference = [
        ("Instruction", "conference"),
        ("From", "+15550001"),
        ("To", "client:carol"),
        ("ConferenceStatusCallbackEvent", "start"),
        ("ConferenceStatusCallbackEvent", "end"),
    ];
    app.update_reservation(&ws, &format!("Tasks/{task_sid}/Reservations/{res}"), &conference, 200).await;

    let list = format!("/2010-04-01/Accounts/{ACCOUNT}/Conferences.json");
    let (status, body) = app.get(&format!("{list}?Status=in-progress")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["first_page_uri"], format!("{list}?Status=in-progress&PageSize=50&Page=0"));
    assert_eq!(body["next_page_uri"], serde_json::Value::Null);
    let conf = &body["conferences"][0];
    assert_eq!(conf["friendly_name"], task_sid);
    assert_eq!(conf["date_created"], "Tue, 14 Nov 2023 22:13:20 +0000");
    assert_eq!(conf["api_version"], "2010-04-01");
    let cf = conf["sid"].as_str().unwrap().to_owned();
    let mut keys: Vec<&str> = conf.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "account_sid",
            "api_version",
            "call_sid_ending_conference",
            "date_created",
            "date_updated",
            "friendly_name",
            "reason_conference_ended",
            "region",
            "sid",
            "status",
            "subresource_uris",
            "uri",
        ]
    );
    assert_eq!(conf["uri"], format!("/2010-04-01/Accounts/{ACCOUNT}/Conferences/{cf}.json"));

    let body = app.end_conference(&cf).await;
    assert_eq!(body["status"], "completed");
    assert_eq!(body["reason_conference_ended"], "conference-ended-via-api");

    app.post_expecting(
        &format!("/2010-04-01/Accounts/{ACCOUNT}/Conferences/{cf}.json"),
        &[("Status", "init")],
        400,
    )
    .await;
    let (status, _) = app.get(&format!("/2010-04-01/Accounts/{ACCOUNT}/Conferences/{cf}")).await;
    assert_eq!(status, 404, "the .json suffix is required");
    let (status, _) =
        app.get("/2010-04-01/Accounts/AC0000000000000000000000000000dead/Conferences.json").await;
    assert_eq!(status, 404, "another account's path");
    let (status, body) = app.get(&format!("{list}?DateCreated%3E=2023-11-01")).await;
    assert_eq!(status, 200, "{body}");
}
