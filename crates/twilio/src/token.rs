//! Tokens for the browser: the TaskRouter worker capability token (TaskRouter.js v1) and the AccessToken
//! with a TaskRouter grant (TaskRouter.js v2), plus their verification.
//!
//! Both are HS256 JWTs. HS256 is small enough to write out with `hmac` + `sha2` + `base64`, which keeps a
//! general JWT library (and its algorithm-confusion surface) out of the dependency tree: verification here
//! accepts `HS256` only.
//!
//! The worker capability token is built claim for claim and policy for policy as twilio-python's
//! `WorkerCapabilityToken` builds it (reference §11.1), so TaskRouter.js and Twilio's EventBridge accept it.
//! Time is passed in (`now`, unix seconds) so tokens are deterministic in tests.

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// The lifetime of a worker token unless [`WorkerCapability::ttl`] says otherwise: 8 hours, one working
/// shift, so an agent is not logged out mid-shift. Twilio's helper libraries default to 1 hour.
pub const DEFAULT_WORKER_TTL: Duration = Duration::from_secs(8 * 60 * 60);

/// The lifetime of an [`AccessToken`] unless set otherwise: 1 hour, as in Twilio's helper libraries.
pub const DEFAULT_ACCESS_TTL: Duration = Duration::from_secs(60 * 60);

/// Twilio's TaskRouter REST base, used in policy URLs.
pub const TASKROUTER_URL: &str = "https://taskrouter.twilio.com";

/// Twilio's EventBridge websocket channel base, used in the two websocket policies every token carries.
pub const EVENT_BRIDGE_URL: &str = "https://event-bridge.twilio.com/v1/wschannels";

/// What went wrong building or verifying a token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// A SID given to a builder does not have the expected prefix.
    #[error("{what} must be a Twilio SID starting with {prefix}, got {value:?}; check the configuration")]
    InvalidSid {
        /// Which input was wrong, e.g. "account SID".
        what: &'static str,
        /// The expected two-letter prefix.
        prefix: &'static str,
        /// The value that was given.
        value: String,
    },
    /// The token is not three Base64url parts of JSON.
    #[error("the token is malformed ({0}); ask for a new token")]
    Malformed(String),
    /// The token header names an algorithm other than HS256.
    #[error("the token uses algorithm {0:?}, only HS256 is accepted; ask for a new token")]
    UnsupportedAlgorithm(String),
    /// The signature does not match: another secret signed it, or it was altered.
    #[error("the token signature is invalid (signed with another secret, or altered); ask for a new token")]
    BadSignature,
    /// `exp` is at or before `now`.
    #[error("the token expired at {exp} (now {now}); ask for a new token")]
    Expired {
        /// The token's `exp` claim.
        exp: u64,
        /// The time of the check.
        now: u64,
    },
    /// `nbf` is after `now`.
    #[error("the token is not valid before {nbf} (now {now}); check the clocks of issuer and verifier")]
    NotYetValid {
        /// The token's `nbf` claim.
        nbf: u64,
        /// The time of the check.
        now: u64,
    },
    /// `iss` is missing or is not the kind of SID this token type is issued by.
    #[error("the token issuer {0:?} is not valid for this kind of token; ask for a new token")]
    BadIssuer(String),
}

/// One capability of a worker token: `allow` (or deny) `method` on `url`, optionally only with the given
/// query or form parameters (reference §11.1, "Policy semantics").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Policy {
    /// A literal URL, or one ending in `/*` (immediate children) or `/**` (any descendant).
    pub url: String,
    /// `GET`, `POST` or `DELETE`.
    pub method: String,
    /// Whether the rule allows (true) or explicitly denies (false); absent means false (reference §11.1).
    #[serde(default)]
    pub allow: bool,
    /// Query parameters the rule is restricted to; `{}` for none (twilio-php writes `null`, read as `{}`).
    #[serde(default, deserialize_with = "null_as_empty")]
    pub query_filter: serde_json::Map<String, serde_json::Value>,
    /// Form parameters the rule is restricted to; `{}` for none (twilio-php writes `null`, read as `{}`).
    #[serde(default, deserialize_with = "null_as_empty")]
    pub post_filter: serde_json::Map<String, serde_json::Value>,
}

impl Policy {
    /// A rule that allows `method` on `url`, with no filter.
    pub fn allow(url: impl Into<String>, method: &str) -> Self {
        Self {
            url: url.into(),
            method: method.to_owned(),
            allow: true,
            query_filter: serde_json::Map::new(),
            post_filter: serde_json::Map::new(),
        }
    }

    /// A rule that explicitly denies `method` on `url` (twilio-php's `deny()`).
    pub fn deny(url: impl Into<String>, method: &str) -> Self {
        Self { allow: false, ..Self::allow(url, method) }
    }
}

fn null_as_empty<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<serde_json::Map<String, serde_json::Value>, D::Error> {
    Ok(Option::deserialize(d)?.unwrap_or_default())
}

/// What the worker and channel capability builders share: who signs (the account and its Auth Token), the
/// workspace, the lifetime and the bases put in policy URLs.
#[derive(Clone)]
struct Capability {
    account_sid: String,
    auth_token: String,
    workspace_sid: String,
    ttl: Duration,
    taskrouter_url: String,
    event_bridge_url: String,
}

impl Capability {
    fn new(account_sid: String, auth_token: String, workspace_sid: String, ttl: Duration) -> Self {
        Self {
            account_sid,
            auth_token,
            workspace_sid,
            ttl,
            taskrouter_url: TASKROUTER_URL.to_owned(),
            event_bridge_url: EVENT_BRIDGE_URL.to_owned(),
        }
    }

    /// `{taskrouter}/v1/Workspaces/{WS}`.
    fn workspace_url(&self) -> String {
        format!("{}/v1/Workspaces/{}", self.taskrouter_url.trim_end_matches('/'), self.workspace_sid)
    }

    /// The claims of a token for `channel` issued at `now`: the two event-bridge policies (`GET` and `POST`
    /// on the channel's websocket) that every capability token starts with, then `policies`.
    fn claims(&self, now: u64, channel: &str, policies: Vec<Policy>) -> Result<CapabilityClaims, TokenError> {
        check_sid("account SID", "AC", &self.account_sid)?;
        check_sid("workspace SID", "WS", &self.workspace_sid)?;
        let websocket =
            format!("{}/{}/{channel}", self.event_bridge_url.trim_end_matches('/'), self.account_sid);
        let mut all = vec![Policy::allow(websocket.clone(), "GET"), Policy::allow(websocket, "POST")];
        all.extend(policies);
        Ok(CapabilityClaims {
            version: "v1".to_owned(),
            friendly_name: Some(channel.to_owned()),
            policies: all,
            iss: self.account_sid.clone(),
            exp: now.saturating_add(self.ttl.as_secs()),
            nbf: Some(now),
            account_sid: self.account_sid.clone(),
            channel: channel.to_owned(),
            workspace_sid: self.workspace_sid.clone(),
            worker_sid: String::new(),
            taskqueue_sid: None,
        })
    }

    fn sign(&self, claims: &CapabilityClaims) -> Result<String, TokenError> {
        encode(&JwtHeader::plain(), claims, self.auth_token.as_bytes())
    }
}

// Never prints the Auth Token.
debug_fields!(Capability { account_sid, workspace_sid, ttl });

/// Builder of a TaskRouter worker capability token (TaskRouter.js v1), signed with the account Auth Token.
///
/// The six default policies (websocket GET and POST, fetch self, fetch activities, fetch `Tasks/**`, fetch
/// own reservations) are always present, in twilio-python's order; the options append theirs after them in
/// the order the `allow_*` methods are documented here.
#[derive(Clone, Debug)]
pub struct WorkerCapability {
    base: Capability,
    worker_sid: String,
    fetch_subresources: bool,
    activity_updates: bool,
    reservation_updates: bool,
}

impl WorkerCapability {
    /// A worker token for `worker_sid` in `workspace_sid`, to be signed with `auth_token`. TTL
    /// [`DEFAULT_WORKER_TTL`] (8 h), no optional capabilities.
    pub fn new(
        account_sid: impl Into<String>,
        auth_token: impl Into<String>,
        workspace_sid: impl Into<String>,
        worker_sid: impl Into<String>,
    ) -> Self {
        let (account, token, workspace) = (account_sid.into(), auth_token.into(), workspace_sid.into());
        Self {
            base: Capability::new(account, token, workspace, DEFAULT_WORKER_TTL),
            worker_sid: worker_sid.into(),
            fetch_subresources: false,
            activity_updates: false,
            reservation_updates: false,
        }
    }

    /// How long the token is valid from `now`. Default 8 hours (Twilio's libraries default to 1 hour).
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.base.ttl = ttl;
        self
    }

    /// `GET {workspace}/Workers/{WK}/**`: fetch the worker's sub-resources (channels, statistics, ...).
    pub fn allow_fetch_subresources(mut self, allow: bool) -> Self {
        self.fetch_subresources = allow;
        self
    }

    /// `POST {workspace}/Workers/{WK}` with a required `ActivitySid`: the worker may change its activity.
    pub fn allow_activity_updates(mut self, allow: bool) -> Self {
        self.activity_updates = allow;
        self
    }

    /// `POST {workspace}/Tasks/**` and `POST {workspace}/Workers/{WK}/Reservations/**`: the worker may accept,
    /// reject and complete reservations.
    pub fn allow_reservation_updates(mut self, allow: bool) -> Self {
        self.reservation_updates = allow;
        self
    }

    /// What a worker's own page needs, as in Twilio's worker token example and the original app: fetching
    /// the worker's sub-resources, activity updates and reservation updates.
    pub fn allow_worker_page(self) -> Self {
        self.allow_fetch_subresources(true).allow_activity_updates(true).allow_reservation_updates(true)
    }

    /// The TaskRouter base put in policy URLs, default [`TASKROUTER_URL`]. Only a local engine that checks
    /// policies against its own host needs another value; real Twilio requires the default.
    pub fn taskrouter_url(mut self, url: impl Into<String>) -> Self {
        self.base.taskrouter_url = url.into();
        self
    }

    /// The EventBridge websocket base put in policy URLs, default [`EVENT_BRIDGE_URL`].
    pub fn event_bridge_url(mut self, url: impl Into<String>) -> Self {
        self.base.event_bridge_url = url.into();
        self
    }

    /// The claims the token will carry when issued at `now` (unix seconds).
    pub fn claims(&self, now: u64) -> Result<CapabilityClaims, TokenError> {
        let ws = self.base.workspace_url();
        let worker = format!("{ws}/Workers/{}", self.worker_sid);
        let mut policies = vec![
            Policy::allow(worker.clone(), "GET"),
            Policy::allow(format!("{ws}/Activities"), "GET"),
            Policy::allow(format!("{ws}/Tasks/**"), "GET"),
            Policy::allow(format!("{worker}/Reservations/**"), "GET"),
        ];
        if self.fetch_subresources {
            policies.push(Policy::allow(format!("{worker}/**"), "GET"));
        }
        if self.activity_updates {
            let mut policy = Policy::allow(worker.clone(), "POST");
            policy.post_filter.insert("ActivitySid".to_owned(), serde_json::json!({ "required": true }));
            policies.push(policy);
        }
        if self.reservation_updates {
            policies.push(Policy::allow(format!("{ws}/Tasks/**"), "POST"));
            policies.push(Policy::allow(format!("{worker}/Reservations/**"), "POST"));
        }
        let claims = self.base.claims(now, &self.worker_sid, policies)?;
        check_sid("worker SID", "WK", &self.worker_sid)?;
        Ok(CapabilityClaims { worker_sid: self.worker_sid.clone(), ..claims })
    }

    /// The signed JWT, issued at `now` (unix seconds).
    pub fn to_jwt(&self, now: u64) -> Result<String, TokenError> {
        self.base.sign(&self.claims(now)?)
    }
}

/// Verifies a worker capability token signed with `auth_token` at time `now` (unix seconds): HS256
/// signature, a `worker_sid`, `exp` after `now`, `nbf` (when present) not after `now`, and an issuer that is
/// an account SID equal to the `account_sid` claim.
pub fn verify_worker_token(token: &str, auth_token: &str, now: u64) -> Result<CapabilityClaims, TokenError> {
    let claims: CapabilityClaims = decode(token, auth_token.as_bytes())?;
    if claims.worker_sid.is_empty() {
        return Err(TokenError::Malformed(format!("no worker_sid: a token for channel {}", claims.channel)));
    }
    check_capability(&claims, now)?;
    Ok(claims)
}

/// What every capability token must hold besides its signature: its times, and the account as issuer.
fn check_capability(claims: &CapabilityClaims, now: u64) -> Result<(), TokenError> {
    check_times(claims.exp, claims.nbf, now)?;
    if !claims.iss.starts_with("AC") || claims.iss != claims.account_sid {
        return Err(TokenError::BadIssuer(claims.iss.clone()));
    }
    Ok(())
}

/// Builder of a TaskRouter capability token for a task queue's (`WQ…`) or a whole workspace's (`WS…`)
/// channel (TaskRouter.js v1's `TaskQueue` and `Workspace`), signed with the account Auth Token, as
/// twilio-python's `TaskQueueCapabilityToken` and `WorkspaceCapabilityToken` build it (reference §11.1): the
/// two event-bridge policies and `GET` on the resource (`{ws}/TaskQueues/{WQ}` or `{ws}`), then the policies
/// of the `allow_*` options and any added with [`ChannelCapability::policy`], in that order.
#[derive(Clone, Debug)]
pub struct ChannelCapability {
    base: Capability,
    /// `WQ…`, or the workspace SID for a workspace channel.
    channel: String,
    extra: Vec<Policy>,
}

impl ChannelCapability {
    /// A token for the channel of task queue `task_queue_sid`.
    pub fn task_queue(
        account_sid: impl Into<String>,
        auth_token: impl Into<String>,
        workspace_sid: impl Into<String>,
        task_queue_sid: impl Into<String>,
    ) -> Self {
        Self::new(account_sid.into(), auth_token.into(), workspace_sid.into(), task_queue_sid.into())
    }

    /// A token for the channel of the whole workspace.
    pub fn workspace(
        account_sid: impl Into<String>,
        auth_token: impl Into<String>,
        workspace_sid: impl Into<String>,
    ) -> Self {
        let workspace_sid = workspace_sid.into();
        Self::new(account_sid.into(), auth_token.into(), workspace_sid.clone(), workspace_sid)
    }

    fn new(account_sid: String, auth_token: String, workspace_sid: String, channel: String) -> Self {
        let base = Capability::new(account_sid, auth_token, workspace_sid, DEFAULT_ACCESS_TTL);
        Self { base, channel, extra: Vec::new() }
    }

    /// How long the token is valid from `now`. Default 1 hour, as in Twilio's helper libraries.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.base.ttl = ttl;
        self
    }

    /// `GET {resource}/**`: the resource's sub-resources (a queue's statistics, the workspace's lists).
    pub fn allow_fetch_subresources(self) -> Self {
        let url = format!("{}/**", self.resource_url());
        self.policy(Policy::allow(url, "GET"))
    }

    /// `POST {resource}`: update the queue or the workspace itself.
    pub fn allow_updates(self) -> Self {
        let url = self.resource_url();
        self.policy(Policy::allow(url, "POST"))
    }

    /// `POST {resource}/**`: create and update what is under the resource.
    pub fn allow_updates_subresources(self) -> Self {
        let url = format!("{}/**", self.resource_url());
        self.policy(Policy::allow(url, "POST"))
    }

    /// Appends a policy of the caller's own.
    pub fn policy(mut self, policy: Policy) -> Self {
        self.extra.push(policy);
        self
    }

    /// The TaskRouter base put in policy URLs, default [`TASKROUTER_URL`].
    pub fn taskrouter_url(mut self, url: impl Into<String>) -> Self {
        self.base.taskrouter_url = url.into();
        self
    }

    /// `{ws}` for a workspace channel, `{ws}/TaskQueues/{WQ}` for a queue's.
    fn resource_url(&self) -> String {
        let ws = self.base.workspace_url();
        if self.channel.starts_with("WQ") {
            format!("{ws}/TaskQueues/{}", self.channel)
        } else {
            ws
        }
    }

    /// The claims the token will carry when issued at `now` (unix seconds).
    pub fn claims(&self, now: u64) -> Result<CapabilityClaims, TokenError> {
        let mut policies = vec![Policy::allow(self.resource_url(), "GET")];
        policies.extend(self.extra.iter().cloned());
        let claims = self.base.claims(now, &self.channel, policies)?;
        let queue = self.channel.starts_with("WQ");
        if !queue && self.channel != self.base.workspace_sid {
            return Err(TokenError::InvalidSid {
                what: "task queue SID",
                prefix: "WQ",
                value: self.channel.clone(),
            });
        }
        Ok(CapabilityClaims { taskqueue_sid: queue.then(|| self.channel.clone()), ..claims })
    }

    /// The signed JWT, issued at `now` (unix seconds).
    pub fn to_jwt(&self, now: u64) -> Result<String, TokenError> {
        self.base.sign(&self.claims(now)?)
    }
}

/// The payload of a TaskRouter capability token (a worker's, a task queue's or the workspace's channel), in
/// twilio-python's key order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CapabilityClaims {
    /// Always `"v1"`.
    pub version: String,
    /// The channel id (twilio-node omits it unless set).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub friendly_name: Option<String>,
    /// What the bearer may do.
    pub policies: Vec<Policy>,
    /// The issuer: the account SID.
    pub iss: String,
    /// Expiry, unix seconds.
    pub exp: u64,
    /// Not valid before, unix seconds (twilio-python sets it; twilio-php does not).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    /// The account SID.
    pub account_sid: String,
    /// The channel: a worker (`WK…`), a task queue (`WQ…`) or the workspace (`WS…`).
    pub channel: String,
    /// The workspace SID.
    pub workspace_sid: String,
    /// The worker, for a worker's channel; empty, and left out of the payload, for any other channel.
    /// [`verify_worker_token`] refuses a token without one. A `String` rather than an `Option` so that
    /// a worker token's claims name their worker without an unwrap.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub worker_sid: String,
    /// The task queue, for a queue's channel.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub taskqueue_sid: Option<String>,
}

/// Verifies any TaskRouter capability token signed with `auth_token` at `now` (unix seconds), with the
/// checks of [`verify_worker_token`] but the `worker_sid`; which channel it opens is the caller's to check.
pub fn verify_capability_token(
    token: &str,
    auth_token: &str,
    now: u64,
) -> Result<CapabilityClaims, TokenError> {
    let claims: CapabilityClaims = decode(token, auth_token.as_bytes())?;
    check_capability(&claims, now)?;
    Ok(claims)
}

/// Builder of an AccessToken with a TaskRouter grant (TaskRouter.js v2), signed with an API key secret
/// (reference §11.2).
#[derive(Clone)]
pub struct AccessToken {
    account_sid: String,
    api_key_sid: String,
    api_key_secret: String,
    identity: Option<String>,
    ttl: Duration,
    region: Option<String>,
    grant: Option<TaskRouterGrant>,
}

/// The `task_router` grant of an [`AccessToken`]; each field is emitted only when set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TaskRouterGrant {
    /// The workspace SID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace_sid: Option<String>,
    /// The worker SID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_sid: Option<String>,
    /// The role, e.g. `"worker"` or `"supervisor"` (Flex).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
}

/// The `grants` claim of an [`AccessToken`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grants {
    /// The identity the token is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    /// The TaskRouter grant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub task_router: Option<TaskRouterGrant>,
}

/// The payload of an [`AccessToken`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// `"{api_key_sid}-{issued_at}"`.
    pub jti: String,
    /// The issuer: the API key SID.
    pub iss: String,
    /// The subject: the account SID.
    pub sub: String,
    /// Expiry, unix seconds.
    pub exp: u64,
    /// Not valid before, unix seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    /// What the bearer is granted.
    pub grants: Grants,
}

impl AccessToken {
    /// An access token for `account_sid`, signed with the API key `api_key_sid` / `api_key_secret`.
    /// TTL [`DEFAULT_ACCESS_TTL`] (1 h).
    pub fn new(
        account_sid: impl Into<String>,
        api_key_sid: impl Into<String>,
        api_key_secret: impl Into<String>,
    ) -> Self {
        Self {
            account_sid: account_sid.into(),
            api_key_sid: api_key_sid.into(),
            api_key_secret: api_key_secret.into(),
            identity: None,
            ttl: DEFAULT_ACCESS_TTL,
            region: None,
            grant: None,
        }
    }

    /// The identity (`grants.identity`).
    pub fn identity(mut self, identity: impl Into<String>) -> Self {
        self.identity = Some(identity.into());
        self
    }

    /// How long the token is valid from `now`.
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        self
    }

    /// The region put in the `twr` header.
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// The TaskRouter grant.
    pub fn task_router_grant(mut self, grant: TaskRouterGrant) -> Self {
        self.grant = Some(grant);
        self
    }

    /// The claims the token will carry when issued at `now` (unix seconds).
    pub fn claims(&self, now: u64) -> Result<AccessClaims, TokenError> {
        check_sid("account SID", "AC", &self.account_sid)?;
        check_sid("API key SID", "SK", &self.api_key_sid)?;
        Ok(AccessClaims {
            jti: format!("{}-{now}", self.api_key_sid),
            iss: self.api_key_sid.clone(),
            sub: self.account_sid.clone(),
            exp: now.saturating_add(self.ttl.as_secs()),
            nbf: Some(now),
            grants: Grants { identity: self.identity.clone(), task_router: self.grant.clone() },
        })
    }

    /// The signed JWT, issued at `now` (unix seconds).
    pub fn to_jwt(&self, now: u64) -> Result<String, TokenError> {
        let header = JwtHeader {
            cty: Some("twilio-fpa;v=1".to_owned()),
            typ: Some("JWT".to_owned()),
            alg: "HS256".to_owned(),
            twr: self.region.clone(),
        };
        encode(&header, &self.claims(now)?, self.api_key_secret.as_bytes())
    }
}

// Never prints the API key secret.
debug_fields!(AccessToken { account_sid, api_key_sid, identity, ttl, grant });

/// Verifies an [`AccessToken`] signed with `api_key_secret` at time `now`: HS256 signature, `exp`, `nbf`,
/// an API key SID as issuer and an account SID as subject.
pub fn verify_access_token(token: &str, api_key_secret: &str, now: u64) -> Result<AccessClaims, TokenError> {
    let claims = verify_access_token_signature(token, api_key_secret, now)?;
    if !claims.iss.starts_with("SK") || !claims.sub.starts_with("AC") {
        return Err(TokenError::BadIssuer(claims.iss));
    }
    Ok(claims)
}

/// Verifies an [`AccessToken`]'s HS256 signature with `secret` and its `exp` and `nbf` at `now`, and leaves
/// the issuer to the caller: a local TaskRouter (trworker's event bridge) also accepts tokens its account
/// signs with the auth token, whose issuer is the account SID rather than an API key.
pub fn verify_access_token_signature(
    token: &str,
    secret: &str,
    now: u64,
) -> Result<AccessClaims, TokenError> {
    let claims: AccessClaims = decode(token, secret.as_bytes())?;
    check_times(claims.exp, claims.nbf, now)?;
    Ok(claims)
}

/// The `iss` claim of a token, read without checking its signature: only for choosing which secret to
/// check it with (an AccessToken names the API key that signed it), never for trusting what it says.
pub fn unverified_issuer(token: &str) -> Option<String> {
    let payload = token.trim().split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()?;
    #[derive(Deserialize)]
    struct Issuer {
        iss: String,
    }
    serde_json::from_slice::<Issuer>(&bytes).ok().map(|c| c.iss)
}

#[derive(Debug, Serialize, Deserialize)]
struct JwtHeader {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cty: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    typ: Option<String>,
    alg: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    twr: Option<String>,
}

impl JwtHeader {
    fn plain() -> Self {
        Self { cty: None, typ: Some("JWT".to_owned()), alg: "HS256".to_owned(), twr: None }
    }
}

fn check_sid(what: &'static str, prefix: &'static str, value: &str) -> Result<(), TokenError> {
    if value.starts_with(prefix) {
        Ok(())
    } else {
        Err(TokenError::InvalidSid { what, prefix, value: value.to_owned() })
    }
}

fn check_times(exp: u64, nbf: Option<u64>, now: u64) -> Result<(), TokenError> {
    if exp <= now {
        return Err(TokenError::Expired { exp, now });
    }
    match nbf {
        Some(nbf) if nbf > now => Err(TokenError::NotYetValid { nbf, now }),
        _ => Ok(()),
    }
}

fn mac(secret: &[u8]) -> Result<Hmac<Sha256>, TokenError> {
    Hmac::<Sha256>::new_from_slice(secret).map_err(|e| TokenError::Malformed(format!("HMAC key: {e}")))
}

fn encode<H: Serialize, C: Serialize>(header: &H, claims: &C, secret: &[u8]) -> Result<String, TokenError> {
    let header = serde_json::to_vec(header).map_err(|e| TokenError::Malformed(format!("header: {e}")))?;
    let claims = serde_json::to_vec(claims).map_err(|e| TokenError::Malformed(format!("claims: {e}")))?;
    let mut token = URL_SAFE_NO_PAD.encode(header);
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(claims));
    let mut mac = mac(secret)?;
    mac.update(token.as_bytes());
    let signature = mac.finalize().into_bytes();
    token.push('.');
    token.push_str(&URL_SAFE_NO_PAD.encode(signature));
    Ok(token)
}

fn decode<C: for<'de> Deserialize<'de>>(token: &str, secret: &[u8]) -> Result<C, TokenError> {
    let mut parts = token.trim().split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::Malformed("expected three dot-separated parts".to_owned()));
    };
    let part = |name: &str, text: &str| {
        URL_SAFE_NO_PAD
            .decode(text)
            .map_err(|e| TokenError::Malformed(format!("{name} is not Base64url: {e}")))
    };
    let parsed: JwtHeader = serde_json::from_slice(&part("header", header)?)
        .map_err(|e| TokenError::Malformed(format!("header is not JSON: {e}")))?;
    if parsed.alg != "HS256" {
        return Err(TokenError::UnsupportedAlgorithm(parsed.alg));
    }
    let signature = part("signature", signature)?;
    let mut mac = mac(secret)?;
    mac.update(header.as_bytes());
    mac.update(b".");
    mac.update(payload.as_bytes());
    // `verify_slice` compares in constant time.
    mac.verify_slice(&signature).map_err(|_| TokenError::BadSignature)?;
    serde_json::from_slice(&part("payload", payload)?)
        .map_err(|e| TokenError::Malformed(format!("claims are not the expected JSON: {e}")))
}

#[cfg(test)]
mod tests;
