//! Pagination: `PageSize`/`Page`/`PageToken` in, the v1 `meta` envelope (absolute URLs) or the API 2010 flat
//! envelope (relative URIs) out.
//!
//! `PageToken` is an opaque cursor holding the offset of the page's first item and the key of the item before
//! it. When items were inserted or removed in front of the cursor since the previous page, the key finds the
//! right place again, so a client following `next_page_url` sees every item that existed throughout, once.

use axum::http::StatusCode;
use axum::response::Response;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Map, Value};

use super::error::{ApiError, ApiResult};
use super::extract::json;
use super::params::Params;

/// Default and maximum `PageSize`, as Twilio documents.
pub const DEFAULT_PAGE_SIZE: usize = 50;
/// The largest `PageSize` accepted.
pub const MAX_PAGE_SIZE: usize = 1000;

/// What the client asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    /// Items per page, 1..=1000.
    pub size: usize,
    /// The page number the client counts (echoed, not used for access).
    pub page: u64,
    /// The decoded cursor, when the client followed a next/previous link.
    cursor: Option<Cursor>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Cursor {
    offset: usize,
    /// Key of the item just before `offset` when the token was made.
    after: Option<String>,
}

impl PageRequest {
    /// Takes `PageSize`, `Page` and `PageToken` out of the query.
    pub fn from_params(p: &mut Params) -> ApiResult<PageRequest> {
        let size = p.int("PageSize", 1, MAX_PAGE_SIZE as i64)?.map_or(DEFAULT_PAGE_SIZE, |n| n as usize);
        let page = p.int("Page", 0, i64::MAX)?.map_or(0, |n| n as u64);
        let cursor = match p.str("PageToken") {
            None => None,
            Some(token) if token.is_empty() => None,
            Some(token) => Some(decode_token(&token).ok_or_else(|| {
                ApiError::invalid(
                    "Invalid parameter PageToken: use the next_page_url or previous_page_url as given",
                )
            })?),
        };
        Ok(PageRequest { size, page, cursor })
    }

    /// The index range of `len` items (keyed by `key`) this page covers, plus the tokens of the next and the
    /// previous page.
    pub fn window(&self, len: usize, key: impl Fn(usize) -> String) -> Slice {
        let start = match &self.cursor {
            None => 0,
            Some(Cursor { offset, after: None }) => *offset,
            Some(Cursor { offset, after: Some(after) }) => {
                let at_offset = offset.checked_sub(1).filter(|i| *i < len).map(&key);
                if at_offset.as_deref() == Some(after.as_str()) {
                    *offset
                } else {
                    (0..len).find(|i| key(*i) == *after).map_or(*offset, |i| i + 1)
                }
            }
        }
        .min(len);
        let end = start.saturating_add(self.size).min(len);
        let next = (end < len).then(|| {
            let after = end.checked_sub(1).map(&key);
            encode_token(&Cursor { offset: end, after })
        });
        let previous = (start > 0)
            .then(|| encode_token(&Cursor { offset: start.saturating_sub(self.size), after: None }));
        Slice { start, end, next, previous }
    }
}

/// One page's slice of a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Slice {
    /// First index on the page.
    pub start: usize,
    /// One past the last index on the page.
    pub end: usize,
    next: Option<String>,
    previous: Option<String>,
}

fn encode_token(c: &Cursor) -> String {
    let raw = match &c.after {
        Some(after) => format!("{}:{after}", c.offset),
        None => c.offset.to_string(),
    };
    format!("PT{}", URL_SAFE_NO_PAD.encode(raw))
}

fn decode_token(token: &str) -> Option<Cursor> {
    let bytes = URL_SAFE_NO_PAD.decode(token.strip_prefix("PT")?).ok()?;
    let raw = String::from_utf8(bytes).ok()?;
    let (offset, after) = match raw.split_once(':') {
        Some((o, a)) => (o, Some(a.to_owned())),
        None => (raw.as_str(), None),
    };
    Some(Cursor { offset: offset.parse().ok()?, after })
}

/// Form-encodes a query component the way the helper libraries do (`,` becomes `%2C`, space `+`).
pub fn encode_component(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn query(filters: &[(String, String)], size: usize, page: u64, token: Option<&str>) -> String {
    let mut q: Vec<String> =
        filters.iter().map(|(k, v)| format!("{}={}", encode_component(k), encode_component(v))).collect();
    q.push(format!("PageSize={size}"));
    q.push(format!("Page={page}"));
    if let Some(t) = token {
        q.push(format!("PageToken={}", encode_component(t)));
    }
    q.join("&")
}

/// The envelope a list answers in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Envelope {
    /// TaskRouter v1: `{"meta": {...}, key: items}` with absolute URLs.
    V1,
    /// API 2010: flat, with relative URIs and `start`/`end`.
    V2010,
}

/// A list request: the page the client asked for, and the filters it sent, which every page link echoes.
#[derive(Debug, Clone)]
pub struct List {
    /// The page asked for.
    pub req: PageRequest,
    filters: Vec<(String, String)>,
}

impl List {
    /// Takes `PageSize`, `Page` and `PageToken` out of the query; the rest of it are the list's filters (read
    /// them before `finish()`).
    pub fn from_params(p: &mut Params) -> ApiResult<List> {
        let req = PageRequest::from_params(p)?;
        Ok(List { req, filters: p.pairs().to_vec() })
    }

    /// One page of `items` (keyed by `sort_key` for the page tokens, each rendered by `render`) as the response
    /// in `envelope`, whose links start with `list_url` (v1: absolute; API 2010: the path with `.json`).
    pub fn respond<T>(
        &self,
        envelope: Envelope,
        list_url: &str,
        key: &str,
        items: &[T],
        sort_key: impl Fn(&T) -> String,
        render: impl Fn(&T) -> Value,
    ) -> Response {
        let window = self.req.window(items.len(), |i| items.get(i).map(&sort_key).unwrap_or_default());
        let rendered = items.get(window.start..window.end).unwrap_or(&[]).iter().map(render).collect();
        let links = Links::new(list_url, &self.filters, &self.req, &window);
        let body = match envelope {
            Envelope::V1 => v1(key, &self.req, links, rendered),
            Envelope::V2010 => v2010(key, &self.req, &window, links, rendered),
        };
        json(StatusCode::OK, body)
    }
}

/// The links of one page: the first page's, the previous and the next page's (when there are such pages), and
/// its own.
struct Links {
    first: String,
    previous: Option<String>,
    next: Option<String>,
    this: String,
}

impl Links {
    fn new(list_url: &str, filters: &[(String, String)], req: &PageRequest, window: &Slice) -> Links {
        let link =
            |page: u64, token: Option<&str>| format!("{list_url}?{}", query(filters, req.size, page, token));
        Links {
            first: link(0, None),
            previous: window.previous.as_deref().map(|t| link(req.page.saturating_sub(1), Some(t))),
            next: window.next.as_deref().map(|t| link(req.page.saturating_add(1), Some(t))),
            this: link(req.page, req.cursor.as_ref().map(encode_token).as_deref()),
        }
    }
}

/// The v1 envelope: `{"meta": {...}, key: items}` with absolute URLs.
fn v1(key: &str, req: &PageRequest, links: Links, items: Vec<Value>) -> Value {
    let mut body = Map::new();
    body.insert(
        "meta".into(),
        json!({
            "page": req.page,
            "page_size": req.size,
            "first_page_url": links.first,
            "previous_page_url": links.previous,
            "next_page_url": links.next,
            "url": links.this,
            "key": key,
        }),
    );
    body.insert(key.into(), Value::Array(items));
    Value::Object(body)
}

/// The API 2010 envelope: flat, with relative URIs and `start`/`end`.
fn v2010(key: &str, req: &PageRequest, window: &Slice, links: Links, items: Vec<Value>) -> Value {
    let end = (window.start + items.len()).saturating_sub(1).max(window.start);
    let mut body = json!({
        "first_page_uri": links.first,
        "next_page_uri": links.next,
        "previous_page_uri": links.previous,
        "uri": links.this,
        "page": req.page,
        "page_size": req.size,
        "start": window.start,
        "end": end,
    });
    if let Some(body) = body.as_object_mut() {
        body.insert(key.into(), Value::Array(items));
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(q: &str) -> PageRequest {
        PageRequest::from_params(&mut Params::parse(q).unwrap()).unwrap()
    }

    #[test]
    fn sizes_are_bounded_and_default_to_50() {
        assert_eq!(req("").size, 50);
        assert_eq!(req("PageSize=1000").size, 1000);
        assert!(PageRequest::from_params(&mut Params::parse("PageSize=0").unwrap()).is_err());
        assert!(PageRequest::from_params(&mut Params::parse("PageSize=1001").unwrap()).is_err());
        assert!(PageRequest::from_params(&mut Params::parse("PageToken=garbage").unwrap()).is_err());
    }

    #[test]
    fn following_next_reaches_the_end_even_when_items_move() {
        let mut items: Vec<String> = (0..7).map(|i| format!("k{i}")).collect();
        let mut r = req("PageSize=3");
        let mut seen = Vec::new();
        let mut first = true;
        loop {
            let w = r.window(items.len(), |i| items[i].clone());
            seen.extend(items[w.start..w.end].iter().cloned());
            if first {
                // An item in front of the cursor disappears between pages.
                items.remove(0);
                first = false;
            }
            match w.next {
                Some(t) => r = req(&format!("PageSize=3&PageToken={t}")),
                None => break,
            }
        }
        assert_eq!(seen, ["k0", "k1", "k2", "k3", "k4", "k5", "k6"]);
    }

    /// The body of one page of `items` (1, 2, 3, ...).
    async fn page(list: &List, envelope: Envelope, url: &str, key: &str, items: &[u32]) -> Value {
        let response = list.respond(envelope, url, key, items, u32::to_string, |i| json!(i));
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn envelopes_link_pages() {
        let filters = vec![("AssignmentStatus".to_owned(), "pending,reserved".to_owned())];
        let list = List { req: req("PageSize=2"), filters };
        let v = page(&list, Envelope::V1, "http://h/v1/Workspaces/WS1/Tasks", "tasks", &[1, 2, 3]).await;
        assert_eq!(
            v["meta"]["first_page_url"],
            "http://h/v1/Workspaces/WS1/Tasks?AssignmentStatus=pending%2Creserved&PageSize=2&Page=0"
        );
        assert!(v["meta"]["next_page_url"].as_str().unwrap().contains("Page=1&PageToken=PT"));
        assert_eq!(v["meta"]["previous_page_url"], Value::Null);
        assert_eq!(v["meta"]["key"], "tasks");
        let list = List { req: req("PageSize=2"), filters: Vec::new() };
        let c =
            page(&list, Envelope::V2010, "/2010-04-01/Accounts/AC1/Conferences.json", "conferences", &[1])
                .await;
        assert_eq!(c["first_page_uri"], "/2010-04-01/Accounts/AC1/Conferences.json?PageSize=2&Page=0");
        assert_eq!(c["start"], 0);
        assert_eq!(c["end"], 0);
    }
}
