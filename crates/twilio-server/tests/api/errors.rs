//! Auth, unknown paths and methods, malformed and unknown parameters: Twilio-style bodies, never a 5xx.

use super::helpers::*;

#[tokio::test]
async fn missing_or_wrong_credentials_get_401_20003() {
    let app = spawn_app().await;
    let r = app.client.get(app.url("/v1/Workspaces")).send().await.unwrap();
    // The challenge tells a browser or curl user which credentials to send, as Twilio's does.
    let challenge = r.headers().get("www-authenticate").and_then(|v| v.to_str().ok()).map(str::to_owned);
    assert_eq!(challenge.as_deref(), Some("Basic realm=\"Twilio API\""));
    let (status, body) = read(r).await;
    assert_eq!(status, 401);
    assert_twilio_error(&body, 401, 20003);
    let r = app.client.get(app.url("/v1/Workspaces")).basic_auth(ACCOUNT, Some("nope")).send().await.unwrap();
    let (status, body) = read(r).await;
    assert_eq!(status, 401);
    assert_twilio_error(&body, 401, 20003);
    let (status, _) = app.get("/v1/Workspaces").await;
    assert_eq!(status, 200);
    // The header as the helper libraries send it is matched as it is; other spellings are decoded.
    use base64::Engine as _;
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{ACCOUNT}:{TOKEN}"));
    for (header, expected) in [
        (format!("basic  {encoded} "), 200),
        (format!("Basic {}", &encoded[..encoded.len() - 1]), 401),
        (format!("Basic {encoded}x"), 401),
        (format!("Bearer {encoded}"), 401),
    ] {
        let r =
            app.client.get(app.url("/v1/Workspaces")).header("Authorization", &header).send().await.unwrap();
        assert_eq!(r.status(), expected, "{header}");
    }
}

#[tokio::test]
async fn unknown_paths_are_20404_and_wrong_methods_405() {
    let app = spawn_app().await;
    let (status, body) = app.get("/v1/Nope").await;
    assert_eq!(status, 404);
    assert_eq!(assert_twilio_error(&body, 404, 20404), "The requested resource /Nope was not found");
    let ws = app.workspace(&[]).await;
    let missing = "WT0000000000000000000000000000ffff";
    let (status, body) = app.get(&format!("/v1/Workspaces/{ws}/Tasks/{missing}")).await;
    assert_eq!(status, 404);
    assert_twilio_error(&body, 404, 20404);
    let r = app.client.put(app.url("/v1/Workspaces")).basic_auth(ACCOUNT, Some(TOKEN)).send().await.unwrap();
    let (status, body) = read(r).await;
    assert_eq!(status, 405);
    assert_eq!(body["status"], 405);
}

#[tokio::test]
async fn bad_input_is_a_400_naming_the_parameter() {
    let app = spawn_app().await;
    let (status, body) = app.post("/v1/Workspaces", &[("FriendlyName", "x"), ("FriendlyNmae", "y")]).await;
    assert_eq!(status, 400);
    assert!(assert_twilio_error(&body, 400, 20001).contains("FriendlyNmae"));

    let (status, body) = app.post("/v1/Workspaces", &[]).await;
    assert_eq!(status, 400);
    assert!(assert_twilio_error(&body, 400, 20001).contains("FriendlyName"));

    let r = app
        .client
        .post(app.url("/v1/Workspaces"))
        .basic_auth(ACCOUNT, Some(TOKEN))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("FriendlyName=%zz")
        .send()
        .await
        .unwrap();
    let (status, body) = read(r).await;
    assert_eq!(status, 400);
    assert!(assert_twilio_error(&body, 400, 20001).contains("Malformed"));

    let ws = app.workspace(&[]).await;
    let (status, body) = app
        .post(&format!("/v1/Workspaces/{ws}/Workers"), &[("FriendlyName", "a"), ("Attributes", "{not json")])
        .await;
    assert_eq!(status, 400);
    assert!(assert_twilio_error(&body, 400, 20001).contains("Attributes"));

    // The Priority filter's range is the engine's rule, as a task's priority is.
    let (status, body) = app.get(&format!("/v1/Workspaces/{ws}/Tasks?Priority=-1")).await;
    assert_eq!(status, 400);
    assert!(assert_twilio_error(&body, 400, 20001).contains("Priority"));

    let (status, body) = app.get("/v1/Workspaces/WSnot-a-sid").await;
    assert_eq!(status, 400);
    assert!(assert_twilio_error(&body, 400, 20001).contains("Sid"));

    let (status, body) = app.get("/v1/Workspaces?PageSize=5000").await;
    assert_eq!(status, 400);
    assert!(assert_twilio_error(&body, 400, 20001).contains("PageSize"));

    let (status, body) = app.get("/v1/Workspaces?Bogus=1").await;
    assert_eq!(status, 400);
    assert!(assert_twilio_error(&body, 400, 20001).contains("Bogus"));
}

#[tokio::test]
async fn oversized_bodies_are_refused_without_a_5xx() {
    let app = spawn_app().await;
    let big = "a".repeat(4 * 1024 * 1024);
    let r = app
        .client
        .post(app.url("/v1/Workspaces"))
        .basic_auth(ACCOUNT, Some(TOKEN))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(format!("FriendlyName={big}"))
        .send()
        .await
        .unwrap();
    let (status, body) = read(r).await;
    assert_eq!(status, 413);
    assert_twilio_error(&body, 413, 20001);
}
