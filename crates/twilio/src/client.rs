//! The HTTP client: configuration, Basic auth, form encoding, retries, timeouts and paging.
//!
//! The operations themselves live in [`taskrouter`] and [`statistics`] (TaskRouter v1), [`conference`] and
//! [`keys`] (API 2010) as `impl Client` blocks with their parameter types; this file owns what every request
//! shares:
//!
//! - Requests go to the configured base URLs only (`taskrouter_url`, `api_url`), so the same client drives
//!   real Twilio and the local engine.
//! - Every request has a timeout. 429, 502, 503 and 504 are retried for every method: Twilio did not act on
//!   them. Other 5xx and failures after the request was sent are retried for GET and DELETE only, because
//!   repeating a POST that the server may have applied could create a second task or act twice on a
//!   reservation. Retries back off exponentially with jitter, honour `Retry-After` (seconds), and stop after
//!   `max_retries`; the last error is returned unchanged.
//! - Lists are [`Paged`] streams that follow `meta.next_page_url` (v1, absolute) or `next_page_uri` (API 2010,
//!   joined to `api_url`) until the server says there is no next page.

/// Declares an operation's parameter struct (`Debug`, `Clone`, `Default`) together with its `fn form()`:
/// each field written `=> "WireName"` is sent under that name, in the order declared, by its [`Param`]
/// impl (an `Option` only when set, a list as one pair per item); a field without a wire name (`if_match`,
/// an instruction) is the operation's to send. One table per struct instead of a field list plus a chain
/// of `.opt(..)` calls that had to name every field again.
macro_rules! params {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $($(#[$field_meta:meta])* pub $field:ident: $ty:ty $(=> $wire:literal)?,)*
        }
    ) => {
        $(#[$meta])*
        // A field is a Twilio parameter, named by its wire name; a doc comment says what is not obvious.
        #[allow(missing_docs)]
        #[derive(Debug, Clone, Default)]
        pub struct $name {
            $($(#[$field_meta])* pub $field: $ty,)*
        }

        impl $name {
            /// The fields that have a wire name, as form or query parameters.
            fn form(&self) -> $crate::client::Form {
                let mut form = $crate::client::Form::new();
                $($($crate::client::Param::put(&self.$field, &mut form, $wire);)?)*
                form
            }
        }
    };
}

pub mod conference;
pub mod keys;
pub mod statistics;
pub mod taskrouter;

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::future::BoxFuture;
use futures_util::stream::{self, BoxStream, Stream, StreamExt as _, TryStreamExt as _};
use rand::Rng as _;
use reqwest::header::{HeaderMap, ACCEPT, ETAG, IF_MATCH, RETRY_AFTER};
use reqwest::Method;
use serde::de::DeserializeOwned;

use crate::error::{api_error, body_start, Error};
use crate::models::HasEtag;

/// Twilio's TaskRouter host.
pub const DEFAULT_TASKROUTER_URL: &str = "https://taskrouter.twilio.com";
/// Twilio's API 2010 host.
pub const DEFAULT_API_URL: &str = "https://api.twilio.com";

/// How the client authenticates: HTTP Basic with the account SID and Auth Token, or with an API key.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    /// Username = account SID, password = Auth Token.
    AuthToken(String),
    /// Username = API key SID (`SK…`), password = its secret.
    ApiKey {
        /// The API key SID.
        sid: String,
        /// The API key secret.
        secret: String,
    },
}

impl fmt::Debug for Credentials {
    /// Never prints a secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::AuthToken(_) => f.write_str("AuthToken(<redacted>)"),
            Credentials::ApiKey { sid, .. } => write!(f, "ApiKey {{ sid: {sid:?}, secret: <redacted> }}"),
        }
    }
}

/// Everything the client needs to know. Build with [`Config::new`] or [`Config::with_api_key`] and adjust
/// the public fields.
#[derive(Debug, Clone)]
pub struct Config {
    /// The account (`AC…`): always the `{AccountSid}` of API 2010 paths, also with an API key.
    pub account_sid: String,
    /// How to authenticate.
    pub credentials: Credentials,
    /// The workspace (`WS…`) the TaskRouter operations act on; they fail with [`Error::Config`] without one.
    pub workspace_sid: Option<String>,
    /// TaskRouter base, without `/v1`. Default [`DEFAULT_TASKROUTER_URL`].
    pub taskrouter_url: String,
    /// API 2010 base, without `/2010-04-01`. Default [`DEFAULT_API_URL`].
    pub api_url: String,
    /// Limit for one attempt, from sending the request to the end of the response body. Default 30 s.
    pub timeout: Duration,
    /// How many times a failed request is repeated (so at most `max_retries + 1` attempts). Default 3.
    pub max_retries: u32,
    /// First backoff; doubled on every retry, with jitter. Default 500 ms.
    pub retry_base_delay: Duration,
    /// Longest wait between attempts. A `Retry-After` longer than this ends the retries. Default 30 s.
    pub max_retry_delay: Duration,
}

impl Config {
    /// Account SID + Auth Token against Twilio's hosts, no workspace.
    pub fn new(account_sid: impl Into<String>, auth_token: impl Into<String>) -> Self {
        Self::with_credentials(account_sid.into(), Credentials::AuthToken(auth_token.into()))
    }

    /// Account SID + API key against Twilio's hosts, no workspace.
    pub fn with_api_key(
        account_sid: impl Into<String>,
        key_sid: impl Into<String>,
        key_secret: impl Into<String>,
    ) -> Self {
        let credentials = Credentials::ApiKey { sid: key_sid.into(), secret: key_secret.into() };
        Self::with_credentials(account_sid.into(), credentials)
    }

    fn with_credentials(account_sid: String, credentials: Credentials) -> Self {
        Self {
            account_sid,
            credentials,
            workspace_sid: None,
            taskrouter_url: DEFAULT_TASKROUTER_URL.to_owned(),
            api_url: DEFAULT_API_URL.to_owned(),
            timeout: Duration::from_secs(30),
            max_retries: 3,
            retry_base_delay: Duration::from_millis(500),
            max_retry_delay: Duration::from_secs(30),
        }
    }

    /// Sets the workspace.
    pub fn workspace(mut self, workspace_sid: impl Into<String>) -> Self {
        self.workspace_sid = Some(workspace_sid.into());
        self
    }

    /// Points both APIs at other hosts, e.g. the local engine (`http://127.0.0.1:3000` for both).
    pub fn base_urls(mut self, taskrouter_url: impl Into<String>, api_url: impl Into<String>) -> Self {
        self.taskrouter_url = taskrouter_url.into();
        self.api_url = api_url.into();
        self
    }
}

/// How the client waits between retries. The default uses Tokio's timer; tests substitute one that records
/// the delays and returns at once, so no test waits for a backoff.
pub trait Sleep: Send + Sync + 'static {
    /// A future that completes after `duration`.
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()>;
}

struct TokioSleep;

impl Sleep for TokioSleep {
    fn sleep(&self, duration: Duration) -> BoxFuture<'static, ()> {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// A Twilio REST client. Cheap to clone: clones share the connection pool.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    config: Config,
    sleep: Arc<dyn Sleep>,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client").field("config", &self.inner.config).finish_non_exhaustive()
    }
}

/// A response that passed the status check.
struct Reply {
    status: u16,
    etag: Option<String>,
    body: Vec<u8>,
}

/// What one attempt came to.
enum Attempt {
    Done(Result<Reply, Error>),
    Retry { error: Error, retry_after: Option<Duration> },
}

impl Client {
    /// A client for `config`. Fails when a base URL is not an http(s) URL or the TLS stack cannot start.
    pub fn new(config: Config) -> Result<Self, Error> {
        for (name, value) in [("taskrouter_url", &config.taskrouter_url), ("api_url", &config.api_url)] {
            let parsed = url::Url::parse(value).map_err(|e| {
                Error::Config(format!("{name} {value:?} is not a URL ({e}); give e.g. https://…"))
            })?;
            if !matches!(parsed.scheme(), "http" | "https") {
                return Err(Error::Config(format!("{name} {value:?} must start with http:// or https://")));
            }
        }
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, reqwest::header::HeaderValue::from_static("application/json"));
        let http = reqwest::Client::builder()
            .default_headers(headers)
            .user_agent(concat!("trworker-twilio/", env!("CARGO_PKG_VERSION")))
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(10)))
            .build()
            .map_err(|e| Error::Config(format!("could not start the HTTP client: {e}")))?;
        Ok(Self { inner: Arc::new(Inner { http, config, sleep: Arc::new(TokioSleep) }) })
    }

    /// The same client waiting between retries with `sleep` instead of Tokio's timer.
    pub fn with_sleep(&self, sleep: impl Sleep) -> Self {
        let inner = Inner {
            http: self.inner.http.clone(),
            config: self.inner.config.clone(),
            sleep: Arc::new(sleep),
        };
        Self { inner: Arc::new(inner) }
    }

    /// The same client acting on another workspace.
    pub fn with_workspace(&self, workspace_sid: impl Into<String>) -> Self {
        let mut config = self.inner.config.clone();
        config.workspace_sid = Some(workspace_sid.into());
        let inner = Inner { http: self.inner.http.clone(), config, sleep: Arc::clone(&self.inner.sleep) };
        Self { inner: Arc::new(inner) }
    }

    /// The configuration in use.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// The configured workspace SID.
    pub fn workspace_sid(&self) -> Result<&str, Error> {
        self.inner.config.workspace_sid.as_deref().ok_or_else(|| {
            Error::Config("no workspace SID configured; set WORKSPACE_SID or call with_workspace".to_owned())
        })
    }

    // ---- URLs ----

    /// `{taskrouter_url}/v1/{path}`.
    pub(crate) fn v1_url(&self, path: &str) -> String {
        format!("{}/v1/{path}", self.inner.config.taskrouter_url.trim_end_matches('/'))
    }

    /// `{taskrouter_url}/v1/Workspaces/{WS}{rest}`.
    pub(crate) fn workspace_url(&self, rest: &str) -> Result<String, Error> {
        Ok(self.v1_url(&format!("Workspaces/{}{rest}", segment(self.workspace_sid()?))))
    }

    /// `{api_url}/2010-04-01/Accounts/{AC}/{rest}`.
    pub(crate) fn account_url(&self, rest: &str) -> String {
        format!(
            "{}/2010-04-01/Accounts/{}/{rest}",
            self.inner.config.api_url.trim_end_matches('/'),
            segment(&self.inner.config.account_sid)
        )
    }

    // ---- verbs ----

    pub(crate) async fn get<T: DeserializeOwned>(&self, url: String) -> Result<T, Error> {
        let reply = self.send(Method::GET, &url, &[], None).await?;
        decode(&url, &reply)
    }

    pub(crate) async fn get_versioned<T: DeserializeOwned + HasEtag>(&self, url: String) -> Result<T, Error> {
        let reply = self.send(Method::GET, &url, &[], None).await?;
        let mut value: T = decode(&url, &reply)?;
        value.set_etag(reply.etag);
        Ok(value)
    }

    pub(crate) async fn post<T: DeserializeOwned>(&self, url: String, form: Form) -> Result<T, Error> {
        let reply = self.send(Method::POST, &url, &form.pairs, form.if_match.as_deref()).await?;
        decode(&url, &reply)
    }

    pub(crate) async fn post_versioned<T: DeserializeOwned + HasEtag>(
        &self,
        url: String,
        form: Form,
    ) -> Result<T, Error> {
        let reply = self.send(Method::POST, &url, &form.pairs, form.if_match.as_deref()).await?;
        let mut value: T = decode(&url, &reply)?;
        value.set_etag(reply.etag);
        Ok(value)
    }

    pub(crate) async fn delete(&self, url: String, if_match: Option<&str>) -> Result<(), Error> {
        self.send(Method::DELETE, &url, &[], if_match).await.map(drop)
    }

    /// A list of v1 resources starting at `url` with query `query`.
    pub(crate) fn paged_v1<T: DeserializeOwned + Send + 'static>(
        &self,
        url: Result<String, Error>,
        query: Form,
    ) -> Paged<T> {
        self.paged(url.map(|u| with_query(u, &query.pairs)), PageKind::V1)
    }

    /// A list of API 2010 resources under `key` starting at `url` with query `query`.
    pub(crate) fn paged_2010<T: DeserializeOwned + Send + 'static>(
        &self,
        url: String,
        query: Form,
        key: &'static str,
    ) -> Paged<T> {
        self.paged(Ok(with_query(url, &query.pairs)), PageKind::V2010 { key })
    }

    fn paged<T: DeserializeOwned + Send + 'static>(
        &self,
        first: Result<String, Error>,
        kind: PageKind,
    ) -> Paged<T> {
        let client = self.clone();
        let first = match first {
            Ok(url) => url,
            Err(error) => return Paged { stream: stream::once(async move { Err(error) }).boxed() },
        };
        let pages = stream::try_unfold(Some(first), move |next| {
            let client = client.clone();
            async move {
                let Some(url) = next else {
                    return Ok(None);
                };
                let (items, next) = client.page::<T>(&url, kind).await?;
                Ok::<_, Error>(Some((items, next)))
            }
        });
        let items = pages.map_ok(|items: Vec<T>| stream::iter(items.into_iter().map(Ok))).try_flatten();
        Paged { stream: items.boxed() }
    }

    async fn page<T: DeserializeOwned>(
        &self,
        url: &str,
        kind: PageKind,
    ) -> Result<(Vec<T>, Option<String>), Error> {
        let reply = self.send(Method::GET, url, &[], None).await?;
        let decode_error = |reason: String| Error::Decode {
            url: url.to_owned(),
            status: reply.status,
            reason,
            body_start: body_start(&reply.body),
        };
        let mut object: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&reply.body)
            .map_err(|e| decode_error(format!("not a JSON object: {e}")))?;
        let (key, next) = match kind {
            PageKind::V1 => {
                let meta = object.get("meta").and_then(|m| m.as_object());
                let next = meta.and_then(|m| m.get("next_page_url")).and_then(|v| v.as_str());
                let key =
                    meta.and_then(|m| m.get("key")).and_then(|v| v.as_str()).map(str::to_owned).or_else(
                        || {
                            // twilio-python's fallback: the one key that is not `meta`.
                            let mut others = object.keys().filter(|k| *k != "meta");
                            match (others.next(), others.next()) {
                                (Some(only), None) => Some(only.clone()),
                                _ => None,
                            }
                        },
                    );
                (key, next.filter(|n| !n.is_empty()).map(str::to_owned))
            }
            PageKind::V2010 { key } => {
                let next = object.get("next_page_uri").and_then(|v| v.as_str()).filter(|n| !n.is_empty());
                let base = self.inner.config.api_url.trim_end_matches('/');
                (Some(key.to_owned()), next.map(|uri| join_uri(base, uri)))
            }
        };
        if next.as_deref() == Some(url) {
            // Following it would loop forever.
            return Err(decode_error("the next page link points at the page just read".into()));
        }
        let key =
            key.ok_or_else(|| decode_error("list response has no meta.key and no single list field".into()))?;
        let items =
            object.remove(&key).ok_or_else(|| decode_error(format!("list response has no {key:?}")))?;
        let items: Vec<T> =
            serde_json::from_value(items).map_err(|e| decode_error(format!("items of {key:?}: {e}")))?;
        Ok((items, next))
    }

    /// Sends one request with retries; returns the reply of a 2xx response.
    async fn send(
        &self,
        method: Method,
        url: &str,
        form: &[(String, String)],
        if_match: Option<&str>,
    ) -> Result<Reply, Error> {
        let config = &self.inner.config;
        let mut attempt = 0u32;
        loop {
            let error = match self.attempt(&method, url, form, if_match).await {
                Attempt::Done(result) => return result,
                Attempt::Retry { error, retry_after } => {
                    let jitter = rand::thread_rng().gen::<f64>();
                    let delay = retry_delay(
                        attempt,
                        retry_after,
                        config.retry_base_delay,
                        config.max_retry_delay,
                        jitter,
                    );
                    match delay {
                        Some(delay) if attempt < config.max_retries => {
                            self.inner.sleep.sleep(delay).await;
                            attempt += 1;
                            continue;
                        }
                        _ => error,
                    }
                }
            };
            return Err(error);
        }
    }

    async fn attempt(
        &self,
        method: &Method,
        url: &str,
        form: &[(String, String)],
        if_match: Option<&str>,
    ) -> Attempt {
        let config = &self.inner.config;
        let (user, password) = match &config.credentials {
            Credentials::AuthToken(token) => (config.account_sid.as_str(), token.as_str()),
            Credentials::ApiKey { sid, secret } => (sid.as_str(), secret.as_str()),
        };
        let mut request = self.inner.http.request(method.clone(), url).basic_auth(user, Some(password));
        if let Some(tag) = if_match {
            request = request.header(IF_MATCH, tag);
        }
        if *method == Method::POST {
            match serde_urlencoded::to_string(form) {
                Ok(body) => {
                    request = request
                        .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                        .body(body);
                }
                Err(e) => {
                    return Attempt::Done(Err(Error::Config(format!("could not encode the form: {e}"))))
                }
            }
        }
        let idempotent = *method != Method::POST;
        let transport = |e: reqwest::Error| {
            let retry = e.is_connect() || idempotent;
            let error = if e.is_timeout() {
                Error::Timeout { method: method.to_string(), url: url.to_owned(), after: config.timeout }
            } else {
                Error::Transport { method: method.to_string(), url: url.to_owned(), source: e }
            };
            if retry {
                Attempt::Retry { error, retry_after: None }
            } else {
                Attempt::Done(Err(error))
            }
        };
        let response = match request.send().await {
            Ok(response) => response,
            Err(e) => return transport(e),
        };
        let status = response.status().as_u16();
        let header =
            |name| response.headers().get(name).and_then(|v: &reqwest::header::HeaderValue| v.to_str().ok());
        let etag = header(ETAG).map(str::to_owned);
        let retry_after = header(RETRY_AFTER).and_then(parse_retry_after);
        let body = match response.bytes().await {
            Ok(body) => body.to_vec(),
            Err(e) => return transport(e),
        };
        if (200..300).contains(&status) {
            return Attempt::Done(Ok(Reply { status, etag, body }));
        }
        let error = api_error(status, &body);
        let retry = match status {
            429 | 502 | 503 | 504 => true,
            500..=599 => idempotent,
            _ => false,
        };
        if retry {
            Attempt::Retry { error, retry_after }
        } else {
            Attempt::Done(Err(error))
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum PageKind {
    V1,
    V2010 { key: &'static str },
}

/// A list as a stream of items, fetched a page at a time as it is consumed.
pub struct Paged<T> {
    stream: BoxStream<'static, Result<T, Error>>,
}

impl<T> Paged<T> {
    /// Every item of every page, or the first error.
    pub async fn all(self) -> Result<Vec<T>, Error> {
        self.stream.try_collect().await
    }
}

impl<T> Stream for Paged<T> {
    type Item = Result<T, Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.stream.poll_next_unpin(cx)
    }
}

impl<T> fmt::Debug for Paged<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Paged")
    }
}

/// Form or query parameters, in the order they are added, plus the `If-Match` header of an update.
#[derive(Debug, Default, Clone)]
pub(crate) struct Form {
    pub(crate) pairs: Vec<(String, String)>,
    pub(crate) if_match: Option<String>,
}

impl Form {
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Adds `name=value`.
    pub(crate) fn add(&mut self, name: &str, value: impl fmt::Display) -> &mut Self {
        self.pairs.push((name.to_owned(), value.to_string()));
        self
    }

    /// Adds `name=value` when there is a value.
    pub(crate) fn opt(&mut self, name: &str, value: Option<impl fmt::Display>) -> &mut Self {
        if let Some(value) = value {
            self.add(name, value);
        }
        self
    }

    /// Adds `name=value` once per value: how Twilio takes arrays.
    pub(crate) fn each<V: fmt::Display>(
        &mut self,
        name: &str,
        values: impl IntoIterator<Item = V>,
    ) -> &mut Self {
        for value in values {
            self.add(name, value);
        }
        self
    }

    /// Adds caller-supplied extra parameters verbatim.
    pub(crate) fn extra(&mut self, extra: &[(String, String)]) -> &mut Self {
        self.pairs.extend(extra.iter().cloned());
        self
    }
}

/// How a field of a [`params!`] struct goes into a [`Form`].
pub(crate) trait Param {
    /// Adds `self` under `name`, or nothing when there is nothing to send.
    fn put(&self, form: &mut Form, name: &str);
}

/// A required text.
impl Param for String {
    fn put(&self, form: &mut Form, name: &str) {
        form.add(name, self);
    }
}

/// A JSON document (`Configuration`, `Attributes`), sent as its JSON text as Twilio expects.
impl Param for serde_json::Value {
    fn put(&self, form: &mut Form, name: &str) {
        form.add(name, self);
    }
}

/// Sent only when set, so the server's default applies otherwise.
impl<T: fmt::Display> Param for Option<T> {
    fn put(&self, form: &mut Form, name: &str) {
        form.opt(name, self.as_ref());
    }
}

/// One `name=value` pair per item: how Twilio takes arrays.
impl<T: fmt::Display> Param for Vec<T> {
    fn put(&self, form: &mut Form, name: &str) {
        form.each(name, self);
    }
}

/// How long to wait before retry number `attempt + 1`, or `None` to give up now.
///
/// `Retry-After` wins when present (unless it exceeds `max`, then waiting is pointless within one call);
/// otherwise `base * 2^attempt` capped at `max`, with "equal jitter": half fixed, half scaled by `jitter`
/// (0..1), so concurrent clients spread out but never retry immediately.
pub(crate) fn retry_delay(
    attempt: u32,
    retry_after: Option<Duration>,
    base: Duration,
    max: Duration,
    jitter: f64,
) -> Option<Duration> {
    if let Some(wait) = retry_after {
        return (wait <= max).then_some(wait);
    }
    let exponential = base.saturating_mul(2u32.saturating_pow(attempt.min(30))).min(max);
    let half = exponential / 2;
    Some(half + half.mul_f64(jitter.clamp(0.0, 1.0)))
}

/// `Retry-After` in seconds. The HTTP-date form is not used by Twilio; it reads as absent (plain backoff).
fn parse_retry_after(value: &str) -> Option<Duration> {
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

fn decode<T: DeserializeOwned>(url: &str, reply: &Reply) -> Result<T, Error> {
    serde_json::from_slice(&reply.body).map_err(|e| Error::Decode {
        url: url.to_owned(),
        status: reply.status,
        reason: e.to_string(),
        body_start: body_start(&reply.body),
    })
}

/// Percent-encodes one path segment (a SID, or a participant label that may contain anything).
pub(crate) fn segment(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

fn with_query(url: String, pairs: &[(String, String)]) -> String {
    if pairs.is_empty() {
        return url;
    }
    match serde_urlencoded::to_string(pairs) {
        Ok(query) if !query.is_empty() => {
            format!("{url}{}{query}", if url.contains('?') { '&' } else { '?' })
        }
        _ => url,
    }
}

/// Joins an API 2010 `next_page_uri` (a path) to the API base; an absolute URL is used as is.
fn join_uri(base: &str, uri: &str) -> String {
    if uri.starts_with("http://") || uri.starts_with("https://") {
        uri.to_owned()
    } else if uri.starts_with('/') {
        format!("{base}{uri}")
    } else {
        format!("{base}/{uri}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn backoff_doubles_with_jitter_and_caps() {
        let base = MS(500);
        let max = Duration::from_secs(30);
        assert_eq!(retry_delay(0, None, base, max, 0.0), Some(MS(250)));
        assert_eq!(retry_delay(0, None, base, max, 1.0), Some(MS(500)));
        assert_eq!(retry_delay(2, None, base, max, 0.5), Some(MS(1500)));
        assert_eq!(retry_delay(20, None, base, max, 1.0), Some(max));
        assert_eq!(retry_delay(u32::MAX, None, base, max, 1.0), Some(max));
    }

    #[test]
    fn retry_after_wins_unless_too_long() {
        let max = Duration::from_secs(30);
        assert_eq!(
            retry_delay(0, Some(Duration::from_secs(7)), MS(500), max, 0.9),
            Some(Duration::from_secs(7))
        );
        assert_eq!(retry_delay(0, Some(Duration::from_secs(31)), MS(500), max, 0.9), None);
        assert_eq!(parse_retry_after(" 12 "), Some(Duration::from_secs(12)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
    }

    #[test]
    fn path_segments_and_queries_are_encoded() {
        assert_eq!(segment("WT0123abc"), "WT0123abc");
        assert_eq!(segment("agent one/two"), "agent%20one%2Ftwo");
        let query =
            [("AssignmentStatus".to_owned(), "pending".to_owned()), ("X".to_owned(), "a b&c".to_owned())];
        assert_eq!(
            with_query("https://h/v1/T".to_owned(), &query),
            "https://h/v1/T?AssignmentStatus=pending&X=a+b%26c"
        );
        assert_eq!(with_query("https://h/v1/T".to_owned(), &[]), "https://h/v1/T");
    }

    #[test]
    fn next_page_uri_joins_the_api_base() {
        assert_eq!(
            join_uri("http://127.0.0.1:9", "/2010-04-01/A.json?Page=1"),
            "http://127.0.0.1:9/2010-04-01/A.json?Page=1"
        );
        assert_eq!(join_uri("http://x", "https://api.twilio.com/p"), "https://api.twilio.com/p");
    }

    #[test]
    fn client_futures_and_streams_can_cross_threads() -> Result<(), Error> {
        fn send<T: Send + 'static>(_: &T) {}
        let client = Client::new(Config::new("AC1", "t").workspace("WS1"))?;
        send(&client);
        send(&client.list_tasks(&taskrouter::TaskFilter::default()));
        fn send_future<F: std::future::Future + Send>(_: &F) {}
        send_future(&client.fetch_workspace());
        send_future(&client.update_task_reservation("WT1", "WR1", &taskrouter::UpdateReservation::default()));
        Ok(())
    }

    #[test]
    fn config_debug_hides_secrets() {
        let config = Config::new("AC1", "super-secret-token");
        assert!(!format!("{config:?}").contains("super-secret-token"));
        let config = Config::with_api_key("AC1", "SK1", "key-secret");
        assert!(!format!("{config:?}").contains("key-secret"));
    }

    #[test]
    fn bad_base_urls_are_config_errors() {
        let config = Config::new("AC1", "t").base_urls("ftp://x", "https://api.twilio.com");
        assert!(matches!(Client::new(config), Err(Error::Config(_))));
        let config = Config::new("AC1", "t").base_urls("localhost:3000", "https://api.twilio.com");
        assert!(matches!(Client::new(config), Err(Error::Config(_))));
    }
}
