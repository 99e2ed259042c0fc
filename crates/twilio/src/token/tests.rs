use super::*;
use serde_json::{json, Value};

#[test]
fn queue_and_workspace_tokens_carry_their_channel_and_verify() {
    const WQ: &str = "WQ00000000000000000000000000000005";
    let token = ChannelCapability::task_queue(AC, "secret", WS, WQ).to_jwt(NOW).unwrap();
    let claims = verify_capability_token(&token, "secret", NOW).unwrap();
    assert_eq!((claims.channel.as_str(), claims.taskqueue_sid.as_deref()), (WQ, Some(WQ)));
    assert_eq!(claims.policies.len(), 3);
    assert!(claims.policies[2].url.ends_with(&format!("/TaskQueues/{WQ}")));
    let ws = ChannelCapability::workspace(AC, "secret", WS).allow_updates_subresources();
    let claims = verify_capability_token(&ws.to_jwt(NOW).unwrap(), "secret", NOW).unwrap();
    assert_eq!((claims.channel.as_str(), claims.worker_sid.as_str()), (WS, ""));
    assert_eq!(claims.policies[3].url, format!("https://taskrouter.twilio.com/v1/Workspaces/{WS}/**"));
    // A worker token reads as capability claims too; php's null filters and a missing allow read too.
    let worker = WorkerCapability::new(AC, "secret", WS, WK).to_jwt(NOW).unwrap();
    let claims = verify_capability_token(&worker, "secret", NOW).unwrap();
    assert_eq!(claims.worker_sid, WK);
    let php: Policy =
        serde_json::from_value(json!({"url": "u", "method": "GET", "query_filter": null})).unwrap();
    assert!(!php.allow && php.query_filter.is_empty() && php.post_filter.is_empty());
    assert!(verify_capability_token(&worker, "other", NOW).is_err());
    // A channel token is not a worker token: it names no worker.
    let queue = ChannelCapability::task_queue(AC, "secret", WS, WQ).to_jwt(NOW).unwrap();
    assert!(matches!(verify_worker_token(&queue, "secret", NOW), Err(TokenError::Malformed(_))));
    assert!(!part(&queue, 1).as_object().unwrap().contains_key("worker_sid"));
}

const AC: &str = "AC00000000000000000000000000000001";
const WS: &str = "WS00000000000000000000000000000002";
const WK: &str = "WK00000000000000000000000000000003";
const SK: &str = "SK00000000000000000000000000000004";
const NOW: u64 = 1_700_000_000;

fn part(token: &str, index: usize) -> Value {
    let text = token.split('.').nth(index).unwrap_or_default();
    let bytes = URL_SAFE_NO_PAD.decode(text).unwrap_or_default();
    serde_json::from_slice(&bytes).unwrap_or(Value::Null)
}

fn policy(url: String, method: &str) -> Value {
    json!({"url": url, "method": method, "allow": true, "query_filter": {}, "post_filter": {}})
}

fn default_policies() -> Vec<Value> {
    let ws = format!("https://taskrouter.twilio.com/v1/Workspaces/{WS}");
    let channel = format!("https://event-bridge.twilio.com/v1/wschannels/{AC}/{WK}");
    vec![
        policy(channel.clone(), "GET"),
        policy(channel, "POST"),
        policy(format!("{ws}/Workers/{WK}"), "GET"),
        policy(format!("{ws}/Activities"), "GET"),
        policy(format!("{ws}/Tasks/**"), "GET"),
        policy(format!("{ws}/Workers/{WK}/Reservations/**"), "GET"),
    ]
}

#[test]
fn default_worker_token_carries_twilio_python_claims() -> Result<(), TokenError> {
    let token = WorkerCapability::new(AC, "secret", WS, WK).to_jwt(NOW)?;
    assert_eq!(part(&token, 0), json!({"typ": "JWT", "alg": "HS256"}));
    let expected = json!({
        "version": "v1",
        "friendly_name": WK,
        "policies": default_policies(),
        "iss": AC,
        "exp": NOW + 8 * 3600,
        "nbf": NOW,
        "account_sid": AC,
        "channel": WK,
        "workspace_sid": WS,
        "worker_sid": WK,
    });
    assert_eq!(part(&token, 1), expected);
    Ok(())
}

#[test]
fn worker_token_options_append_their_policies() -> Result<(), TokenError> {
    let token = WorkerCapability::new(AC, "secret", WS, WK)
        .ttl(Duration::from_secs(3600))
        .allow_fetch_subresources(true)
        .allow_activity_updates(true)
        .allow_reservation_updates(true)
        .to_jwt(NOW)?;
    let ws = format!("https://taskrouter.twilio.com/v1/Workspaces/{WS}");
    let mut expected = default_policies();
    expected.push(policy(format!("{ws}/Workers/{WK}/**"), "GET"));
    expected.push(json!({
        "url": format!("{ws}/Workers/{WK}"), "method": "POST", "allow": true,
        "query_filter": {}, "post_filter": {"ActivitySid": {"required": true}},
    }));
    expected.push(policy(format!("{ws}/Tasks/**"), "POST"));
    expected.push(policy(format!("{ws}/Workers/{WK}/Reservations/**"), "POST"));
    let payload = part(&token, 1);
    assert_eq!(payload["policies"], Value::Array(expected));
    assert_eq!(payload["exp"], json!(NOW + 3600));
    // The worker page's set is those three.
    let page = WorkerCapability::new(AC, "secret", WS, WK).ttl(Duration::from_secs(3600)).allow_worker_page();
    assert_eq!(page.to_jwt(NOW)?, token);
    Ok(())
}

#[test]
fn worker_token_rejects_wrong_sid_kinds() {
    let bad = WorkerCapability::new(WS, "secret", WS, WK).to_jwt(NOW);
    assert!(matches!(bad, Err(TokenError::InvalidSid { prefix: "AC", .. })));
    let bad = WorkerCapability::new(AC, "secret", WS, "WQ00000000000000000000000000000003").to_jwt(NOW);
    assert!(matches!(bad, Err(TokenError::InvalidSid { prefix: "WK", .. })));
}

#[test]
fn verify_accepts_what_was_built() -> Result<(), TokenError> {
    let builder = WorkerCapability::new(AC, "secret", WS, WK).allow_activity_updates(true);
    let token = builder.to_jwt(NOW)?;
    let claims = verify_worker_token(&token, "secret", NOW + 10)?;
    assert_eq!(claims, builder.claims(NOW)?);
    assert_eq!(claims.worker_sid, WK);
    Ok(())
}

#[test]
fn verify_rejects_bad_signature_expiry_nbf_issuer_and_garbage() -> Result<(), TokenError> {
    let token = WorkerCapability::new(AC, "secret", WS, WK).to_jwt(NOW)?;
    assert_eq!(verify_worker_token(&token, "other", NOW), Err(TokenError::BadSignature));
    let exp = NOW + 8 * 3600;
    assert_eq!(verify_worker_token(&token, "secret", exp), Err(TokenError::Expired { exp, now: exp }));
    assert_eq!(
        verify_worker_token(&token, "secret", NOW - 1),
        Err(TokenError::NotYetValid { nbf: NOW, now: NOW - 1 })
    );

    // A payload altered after signing.
    let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
    let mut payload = part(&token, 1);
    payload["worker_sid"] = json!("WK99999999999999999999999999999999");
    parts[1] = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&payload).unwrap_or_default());
    assert_eq!(verify_worker_token(&parts.join("."), "secret", NOW), Err(TokenError::BadSignature));

    // Correctly signed, but issued by something that is not the account.
    let mut claims = WorkerCapability::new(AC, "secret", WS, WK).claims(NOW)?;
    claims.iss = SK.to_owned();
    let forged = encode(&JwtHeader::plain(), &claims, b"secret")?;
    assert_eq!(verify_worker_token(&forged, "secret", NOW), Err(TokenError::BadIssuer(SK.to_owned())));

    // alg=none and other algorithms are refused before the signature is looked at.
    let none = format!("{}.{}.", URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#), parts[1]);
    assert_eq!(
        verify_worker_token(&none, "secret", NOW),
        Err(TokenError::UnsupportedAlgorithm("none".into()))
    );

    for garbage in ["", "abc", "a.b", "a.b.c.d", "!!!.???.***", &format!("{}.e30.", parts[0])] {
        let result = verify_worker_token(garbage, "secret", NOW);
        assert!(
            matches!(result, Err(TokenError::Malformed(_) | TokenError::BadSignature)),
            "{garbage:?}: {result:?}"
        );
    }
    Ok(())
}

#[test]
fn access_token_with_task_router_grant() -> Result<(), TokenError> {
    let grant = TaskRouterGrant {
        workspace_sid: Some(WS.to_owned()),
        worker_sid: Some(WK.to_owned()),
        role: Some("worker".to_owned()),
    };
    let token = AccessToken::new(AC, SK, "key-secret")
        .identity("alice")
        .region("ie1")
        .task_router_grant(grant)
        .to_jwt(NOW)?;
    assert_eq!(part(&token, 0), json!({"cty": "twilio-fpa;v=1", "typ": "JWT", "alg": "HS256", "twr": "ie1"}));
    assert_eq!(
        part(&token, 1),
        json!({
            "jti": format!("{SK}-{NOW}"), "iss": SK, "sub": AC, "exp": NOW + 3600, "nbf": NOW,
            "grants": {"identity": "alice", "task_router": {"workspace_sid": WS, "worker_sid": WK, "role": "worker"}},
        })
    );
    let claims = verify_access_token(&token, "key-secret", NOW)?;
    assert_eq!(claims.grants.identity.as_deref(), Some("alice"));
    assert_eq!(verify_access_token(&token, "secret", NOW), Err(TokenError::BadSignature));
    assert!(matches!(verify_access_token(&token, "key-secret", NOW + 3600), Err(TokenError::Expired { .. })));
    // A worker token is not an access token: its issuer is an account.
    let worker = WorkerCapability::new(AC, "key-secret", WS, WK).to_jwt(NOW)?;
    assert!(verify_access_token(&worker, "key-secret", NOW).is_err());
    Ok(())
}

#[test]
fn debug_output_hides_secrets() {
    let worker = WorkerCapability::new(AC, "auth-secret", WS, WK);
    assert!(!format!("{worker:?}").contains("auth-secret"));
    let access = AccessToken::new(AC, SK, "key-secret");
    assert!(!format!("{access:?}").contains("key-secret"));
}

#[test]
fn access_token_omits_unset_grant_keys() -> Result<(), TokenError> {
    let token = AccessToken::new(AC, SK, "s").to_jwt(NOW)?;
    assert_eq!(part(&token, 0), json!({"cty": "twilio-fpa;v=1", "typ": "JWT", "alg": "HS256"}));
    assert_eq!(part(&token, 1)["grants"], json!({}));
    Ok(())
}

#[test]
fn the_issuer_is_read_before_the_signature_only_to_choose_the_key() {
    let key = "SK00000000000000000000000000000009";
    let token =
        AccessToken::new("AC00000000000000000000000000000001", key, "secret").to_jwt(1_700_000_000).unwrap();
    assert_eq!(unverified_issuer(&token).as_deref(), Some(key));
    // Read, not trusted: a token signed with another secret still names its issuer, and fails verification.
    assert!(verify_access_token(&token, "another secret", 1_700_000_000).is_err());
    for bad in ["", "a.b", "a.!!!.c", "a.e30.c"] {
        assert_eq!(unverified_issuer(bad), None, "{bad}");
    }
}
