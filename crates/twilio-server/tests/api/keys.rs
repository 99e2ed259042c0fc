//! API 2010 API Keys: the secret in the create answer only, RFC 2822 dates, the flat list envelope, both
//! path spellings (with and without `.json`), and the secret the engine gives the event bridge.

use super::helpers::*;
use engine::{Prefix, Sid};

fn keys_path() -> String {
    format!("/2010-04-01/Accounts/{ACCOUNT}/Keys")
}

fn field_names(v: &serde_json::Value) -> Vec<&str> {
    let mut names: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    names.sort();
    names
}

#[tokio::test]
async fn a_key_is_created_with_its_secret_then_fetched_listed_renamed_and_deleted_without_it() {
    let app = spawn_app().await;
    let created =
        app.post_expecting(&format!("{}.json", keys_path()), &[("FriendlyName", "bridge")], 201).await;
    assert_eq!(field_names(&created), ["date_created", "date_updated", "friendly_name", "secret", "sid"]);
    let sid = created["sid"].as_str().unwrap().to_owned();
    assert!(Sid::parse_as(&sid, Prefix::ApiKey).is_ok(), "{sid}");
    let secret = created["secret"].as_str().unwrap().to_owned();
    assert_eq!(secret.len(), 32, "{secret}");
    assert!(secret.bytes().all(|b| b.is_ascii_alphanumeric()), "{secret}");
    assert_eq!(created["friendly_name"], "bridge");
    assert_eq!(created["date_created"], "Tue, 14 Nov 2023 22:13:20 +0000");

    let sid_typed = Sid::parse(&sid).unwrap();
    assert_eq!(app.engine.api_key_secret(sid_typed).await.as_deref(), Some(secret.as_str()));

    for path in [format!("{}/{sid}.json", keys_path()), format!("{}/{sid}", keys_path())] {
        let (status, fetched) = app.get(&path).await;
        assert_eq!(status, 200, "{path}: {fetched}");
        assert_eq!(field_names(&fetched), ["date_created", "date_updated", "friendly_name", "sid"]);
        assert_eq!(fetched["sid"], sid.as_str());
    }

    app.clock.advance_millis(60_000);
    let renamed =
        app.post_expecting(&format!("{}/{sid}.json", keys_path()), &[("FriendlyName", "sdk")], 200).await;
    assert_eq!(renamed["friendly_name"], "sdk");
    assert_eq!(renamed["date_updated"], "Tue, 14 Nov 2023 22:14:20 +0000");
    assert_eq!(renamed["secret"], serde_json::Value::Null, "only the create answer carries the secret");

    let other = app.post_expecting(&keys_path(), &[], 201).await;
    assert_eq!(other["friendly_name"], serde_json::Value::Null, "FriendlyName is optional");
    assert_ne!(other["secret"], secret.as_str());

    let (status, list) = app.get(&format!("{}.json?PageSize=1", keys_path())).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["first_page_uri"], format!("{}.json?PageSize=1&Page=0", keys_path()));
    assert_eq!(list["keys"].as_array().unwrap().len(), 1);
    assert_eq!(field_names(&list["keys"][0]), ["date_created", "date_updated", "friendly_name", "sid"]);
    let next = list["next_page_uri"].as_str().unwrap().to_owned();
    let (status, page2) = app.get(&next).await;
    assert_eq!(status, 200, "{page2}");
    assert_eq!(page2["next_page_uri"], serde_json::Value::Null);
    let mut listed = vec![list["keys"][0]["sid"].clone(), page2["keys"][0]["sid"].clone()];
    listed.sort_by_key(|v| v.as_str().unwrap().to_owned());
    let mut expected = vec![serde_json::json!(sid), other["sid"].clone()];
    expected.sort_by_key(|v| v.as_str().unwrap().to_owned());
    assert_eq!(listed, expected);
    let (status, plain) = app.get(&keys_path()).await;
    assert_eq!((status, plain["keys"].as_array().map(Vec::len)), (200, Some(2)), "{plain}");

    assert_eq!(app.delete(&format!("{}/{sid}.json", keys_path())).await, 204);
    let (status, body) = app.get(&format!("{}/{sid}.json", keys_path())).await;
    assert_twilio_error(&body, 404, 20404);
    assert_eq!(status, 404);
    assert_eq!(app.delete(&format!("{}/{sid}", keys_path())).await, 404);
    assert_eq!(app.engine.api_key_secret(sid_typed).await, None, "a deleted key verifies nothing");
}

#[tokio::test]
async fn bad_key_requests_are_refused_and_change_nothing() {
    let app = spawn_app().await;
    let (status, body) = app.post(&keys_path(), &[("FriendlyName", &"x".repeat(65))]).await;
    assert_twilio_error(&body, 400, 20001);
    assert_eq!(status, 400);
    let (status, body) = app.post(&keys_path(), &[("Secret", "mine")]).await;
    assert_eq!(status, 400, "an unknown parameter (a caller cannot choose the secret): {body}");
    for path in [
        format!("{}/WK00000000000000000000000000000001", keys_path()),
        format!("{}/SK00000000000000000000000000000001.json", keys_path()),
        format!("{}/not-a-sid", keys_path()),
        "/2010-04-01/Accounts/AC0000000000000000000000000000dead/Keys.json".to_owned(),
    ] {
        let (status, body) = app.get(&path).await;
        assert_eq!(status, 404, "{path}: {body}");
    }
    let anonymous = app.client.get(app.url(&format!("{}.json", keys_path()))).send().await.unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);
    let anonymous = app.client.post(app.url(&keys_path())).send().await.unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);
    let (_, list) = app.get(&keys_path()).await;
    assert_eq!(list["keys"], serde_json::json!([]), "{list}");
}

#[tokio::test]
async fn an_api_key_authenticates_like_the_auth_token_until_it_is_deleted() {
    let app = spawn_app().await;
    let created = app.post_expecting(&format!("{}.json", keys_path()), &[("FriendlyName", "ops")], 201).await;
    let sid = created["sid"].as_str().unwrap().to_owned();
    let secret = created["secret"].as_str().unwrap().to_owned();
    let with = |password: &str| {
        app.client.get(app.url("/v1/Workspaces")).basic_auth(&sid, Some(password.to_owned())).send()
    };
    assert_eq!(with(&secret).await.unwrap().status().as_u16(), 200, "the helper libraries' key auth");
    assert_eq!(with("not-the-secret").await.unwrap().status().as_u16(), 401);
    assert_eq!(app.delete(&format!("{}/{sid}.json", keys_path())).await, 204);
    assert_eq!(with(&secret).await.unwrap().status().as_u16(), 401, "a deleted key no longer works");
}
