//! Behind a router (Heroku's): TaskRouter signs the public URL it posted to, which the server only learns
//! from `X-Forwarded-Proto`/`X-Forwarded-Host`, unless `PUBLIC_URL` is set, which then wins.

use crate::helpers::{local_env, Proc};

/// Posts a `task.created` event to `/twilio/events`, signed for `signed_for`, with the router's headers.
async fn post_event(server: &Proc, auth_token: &str, signed_for: &str) -> u16 {
    let fields = vec![
        ("EventType".to_owned(), "task.created".to_owned()),
        ("TaskSid".to_owned(), "WT0123456789abcdef0123456789abcdef".to_owned()),
    ];
    let signature = twilio::signature::sign(auth_token, signed_for, &fields);
    reqwest::Client::new()
        .post(server.url("/twilio/events"))
        .header("X-Forwarded-Proto", "https")
        .header("X-Forwarded-Host", "trworker-demo.herokuapp.com")
        .header("X-Twilio-Signature", signature)
        .form(&fields)
        .send()
        .await
        .expect("post the event")
        .status()
        .as_u16()
}

#[tokio::test]
async fn webhook_signatures_follow_the_forwarded_url_unless_public_url_is_set() {
    let public = "https://trworker-demo.herokuapp.com/twilio/events";
    let (dir, server) = Proc::start_in("proxy", &["serve"], &[]);
    let auth_token = local_env(&dir.0)["AUTH_TOKEN"].clone();
    assert_eq!(
        post_event(&server, &auth_token, public).await,
        204,
        "signed for the URL the router was asked"
    );
    let direct = server.url("/twilio/events");
    assert_eq!(post_event(&server, &auth_token, &direct).await, 403, "not the URL TaskRouter posted to");
    server.stop_cleanly();

    // PUBLIC_URL wins over the headers.
    let server = Proc::start(&dir.0, &["serve", "--public-url", "https://other.example.com"], &[]);
    assert_eq!(post_event(&server, &auth_token, public).await, 403);
    let other = "https://other.example.com/twilio/events";
    assert_eq!(post_event(&server, &auth_token, other).await, 204);
    server.stop_cleanly();
}
