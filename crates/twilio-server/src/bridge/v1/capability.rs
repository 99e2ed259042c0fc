//! The bearer of v1 addressing: a TaskRouter capability token (taskrouter.js v1, eb §7; taskrouter.md §11.1,
//! cited here as "tr §11.1") signed HS256 with the engine's auth token, for the channel the path names, and
//! the token's policies, checked on the socket and on every envelope.
//!
//! Policy URLs and request URLs are compared by path: a token made for Twilio names
//! `https://taskrouter.twilio.com/v1/Workspaces/…` and `https://event-bridge.twilio.com/v1/wschannels/…`, a
//! token made for the engine may name its own base; both mean the engine's `/v1/…`.

use engine::{Prefix, Sid, Timestamp};
use serde_json::Value;
use twilio::token::{verify_capability_token, Policy};

use crate::bridge::token::unauthorized;
use crate::{ApiResult, ServerState};

/// Whose channel a token opens (the `channel` claim, tr §11.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Channel {
    /// `WK…`: taskrouter.js v1's `Worker`.
    Worker(Sid),
    /// `WQ…`: taskrouter.js v1's `TaskQueue`.
    TaskQueue(Sid),
    /// `WS…`: taskrouter.js v1's `Workspace`.
    Workspace,
}

/// A verified capability token.
#[derive(Debug, Clone)]
pub(super) struct Capability {
    pub workspace_sid: Sid,
    pub channel: Channel,
    /// The channel's SID as the path names it.
    pub channel_sid: Sid,
    /// Expiry, unix seconds.
    pub exp: u64,
    policies: Vec<Policy>,
}

impl Capability {
    /// Milliseconds the token has left at `now`.
    pub fn lifetime_ms(&self, now: Timestamp) -> u64 {
        let exp_ms = i64::try_from(self.exp).unwrap_or(i64::MAX).saturating_mul(1000);
        u64::try_from(exp_ms.saturating_sub(now.millis())).unwrap_or(0)
    }

    /// Whether the policies allow `method` on `url` (compared by path) with `params` (the query of a `GET`
    /// or `DELETE`, the form of a `POST`). tr §11.1: among the rules that match, the most specific decides
    /// (a longer path beats a shorter one; a literal beats `/*`, which beats `/**`; with equal paths a rule
    /// with a filter beats one without); rules that tie and disagree deny, since the reference calls such
    /// rules invalid; no matching rule denies.
    pub fn allows(&self, method: &str, url: &str, params: &[(String, String)]) -> bool {
        let path = path_of(url);
        let mut best: Option<((usize, u8, bool), bool)> = None;
        for policy in &self.policies {
            let Some(rank) = rank(policy, method, &path, params) else { continue };
            best = match best {
                Some((b, allow)) if b > rank => Some((b, allow)),
                Some((b, allow)) if b == rank => Some((b, allow && policy.allow)),
                _ => Some((rank, policy.allow)),
            };
        }
        best.is_some_and(|(_, allow)| allow)
    }
}

/// The path of a URL: without scheme, host, query and fragment, and without a trailing `/` (taskrouter.js
/// v1's `Workspace` asks for `{ws}/` when it connects).
pub(super) fn path_of(url: &str) -> String {
    let path = crate::bridge::url_path(url).trim_end_matches('/');
    if path.starts_with('/') {
        path.to_owned()
    } else {
        format!("/{path}")
    }
}

/// How specifically `policy` matches the request, or `None` when it does not: the length of its fixed path,
/// its kind (2 literal, 1 `/*`, 0 `/**`) and whether it has a filter.
fn rank(policy: &Policy, method: &str, path: &str, params: &[(String, String)]) -> Option<(usize, u8, bool)> {
    if !policy.method.eq_ignore_ascii_case(method) {
        return None;
    }
    let pattern = path_of(&policy.url);
    let (base, kind) = if let Some(base) = pattern.strip_suffix("/**") {
        // Any descendant, not the base itself.
        let rest = path.strip_prefix(base)?.strip_prefix('/')?;
        (base, (!rest.is_empty()).then_some(0)?)
    } else if let Some(base) = pattern.strip_suffix("/*") {
        // An immediate child.
        let rest = path.strip_prefix(base)?.strip_prefix('/')?;
        (base, (!rest.is_empty() && !rest.contains('/')).then_some(1)?)
    } else {
        (pattern.as_str(), (pattern == path).then_some(2)?)
    };
    let filter = if method.eq_ignore_ascii_case("POST") { &policy.post_filter } else { &policy.query_filter };
    filter
        .iter()
        .all(|(name, rule)| satisfies(rule, params.iter().rfind(|(n, _)| n == name).map(|(_, v)| v)))
        .then_some((base.len(), kind, !filter.is_empty()))
}

/// Whether a parameter's value satisfies one filter entry (tr §11.1): a string must be equalled; a matcher
/// `{"required": bool, "value": "literal"}` needs the parameter when `required` and, when it has a `value`
/// and the parameter is there, that value. The reference's "any other param makes the rule not match" is
/// read as any other value of the named parameter: parameters a filter does not name are not constrained
/// (the helpers' `allowActivityUpdates` filter, `ActivitySid: {required: true}`, would otherwise forbid the
/// SDK's own activity update when it sends anything beside). Any other JSON in a filter never matches.
fn satisfies(rule: &Value, value: Option<&String>) -> bool {
    match rule {
        Value::String(literal) => value == Some(literal),
        Value::Object(matcher) => {
            let required = matcher.get("required").and_then(Value::as_bool).unwrap_or(false);
            match (value, matcher.get("value")) {
                (None, _) => !required,
                (Some(_), None | Some(Value::Null)) => true,
                (Some(v), Some(Value::String(literal))) => v == literal,
                (Some(_), Some(_)) => false,
            }
        }
        _ => false,
    }
}

/// Checks `token` for the channel at `/v1/wschannels/{account}/{channel}` at `now`: signed with the auth
/// token, not expired, for this engine's account, and for exactly that channel (a `WK` token for its worker,
/// a `WQ` one for its queue, a `WS` one for its workspace). Every failure is a 401 saying what was wrong.
pub(super) fn verify(
    state: &ServerState,
    token: &str,
    now: Timestamp,
    account: &str,
    channel: &str,
) -> ApiResult<Capability> {
    let credentials = state.credentials();
    let secs = u64::try_from(now.secs()).unwrap_or(0);
    let claims = verify_capability_token(token, &credentials.auth_token, secs).map_err(unauthorized)?;
    if claims.account_sid != credentials.account_sid || account != credentials.account_sid {
        return Err(unauthorized(format!(
            "this engine serves account {}; the token is for {} and the channel URL names {account}",
            credentials.account_sid, claims.account_sid
        )));
    }
    if claims.channel != channel {
        return Err(unauthorized(format!(
            "the token is for channel {}, the URL names channel {channel}",
            claims.channel
        )));
    }
    let workspace_sid = parse(&claims.workspace_sid, Prefix::Workspace)?;
    let channel_sid =
        Sid::parse(channel).map_err(|e| unauthorized(format!("{channel} is not a SID ({e})")))?;
    let kind = match channel_sid.prefix() {
        Prefix::Worker if claims.worker_sid == channel => Channel::Worker(channel_sid),
        Prefix::TaskQueue if claims.taskqueue_sid.as_deref().is_none_or(|q| q == channel) => {
            Channel::TaskQueue(channel_sid)
        }
        Prefix::Workspace if channel_sid == workspace_sid => Channel::Workspace,
        _ => {
            return Err(unauthorized(format!(
                "channel {channel} must be the token's worker (WK…), task queue (WQ…) or workspace ({workspace_sid})"
            )))
        }
    };
    Ok(Capability { workspace_sid, channel: kind, channel_sid, exp: claims.exp, policies: claims.policies })
}

fn parse(value: &str, prefix: Prefix) -> ApiResult<Sid> {
    Sid::parse_as(value, prefix).map_err(|e| unauthorized(format!("{value} is not a {prefix:?} SID ({e})")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn capability(policies: Vec<Policy>) -> Capability {
        let ws = Sid::new(Prefix::Workspace, 1);
        Capability { workspace_sid: ws, channel: Channel::Workspace, channel_sid: ws, exp: 0, policies }
    }

    const WS: &str = "https://taskrouter.twilio.com/v1/Workspaces/WS1";

    #[test]
    fn urls_are_compared_by_path_with_wildcards() {
        let c = capability(vec![
            Policy::allow(format!("{WS}/Workers/WK1"), "GET"),
            Policy::allow(format!("{WS}/Tasks/**"), "GET"),
            Policy::allow(format!("{WS}/Activities/*"), "GET"),
        ]);
        assert!(c.allows("GET", "http://127.0.0.1:9/v1/Workspaces/WS1/Workers/WK1", &[]));
        assert!(c.allows("get", "/v1/Workspaces/WS1/Workers/WK1/", &[]));
        assert!(!c.allows("POST", "/v1/Workspaces/WS1/Workers/WK1", &[]));
        assert!(!c.allows("GET", "/v1/Workspaces/WS1/Workers/WK2", &[]));
        assert!(!c.allows("GET", "/v1/Workspaces/WS1/Workers/WK1/Reservations", &[]));
        assert!(c.allows("GET", "/v1/Workspaces/WS1/Tasks/WT1/Reservations/WR1", &[]));
        assert!(!c.allows("GET", "/v1/Workspaces/WS1/Tasks", &[]), "/** is not the base itself");
        assert!(c.allows("GET", "/v1/Workspaces/WS1/Activities/WA1", &[]));
        assert!(!c.allows("GET", "/v1/Workspaces/WS1/Activities/WA1/x", &[]), "/* is one level");
    }

    #[test]
    fn the_most_specific_rule_decides_and_filters_constrain() {
        let mut activity = Policy::allow(format!("{WS}/Workers/WK1"), "POST");
        activity.post_filter.insert("ActivitySid".into(), json!({"required": true}));
        let mut only_idle = Policy::allow(format!("{WS}/Workers/WK2"), "POST");
        only_idle.post_filter.insert("ActivitySid".into(), json!("WA1"));
        let c = capability(vec![
            activity,
            only_idle,
            Policy::allow(format!("{WS}/Tasks/**"), "POST"),
            Policy::deny(format!("{WS}/Tasks/WT9"), "POST"),
        ]);
        let p = |k: &str, v: &str| vec![(k.to_owned(), v.to_owned())];
        assert!(c.allows("POST", "/v1/Workspaces/WS1/Workers/WK1", &p("ActivitySid", "WA2")));
        assert!(!c.allows("POST", "/v1/Workspaces/WS1/Workers/WK1", &p("Attributes", "{}")));
        assert!(c.allows("POST", "/v1/Workspaces/WS1/Workers/WK2", &p("ActivitySid", "WA1")));
        assert!(!c.allows("POST", "/v1/Workspaces/WS1/Workers/WK2", &p("ActivitySid", "WA2")));
        assert!(c.allows("POST", "/v1/Workspaces/WS1/Tasks/WT1", &[]));
        assert!(!c.allows("POST", "/v1/Workspaces/WS1/Tasks/WT9", &[]), "the literal deny is more specific");
        // A tie that disagrees denies.
        let tie = capability(vec![
            Policy::allow(format!("{WS}/Tasks"), "GET"),
            Policy::deny(format!("{WS}/Tasks"), "GET"),
        ]);
        assert!(!tie.allows("GET", "/v1/Workspaces/WS1/Tasks", &[]));
    }
}
