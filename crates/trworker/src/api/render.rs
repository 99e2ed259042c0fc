//! How values look on the wire: ISO-8601 dates for TaskRouter v1, RFC 2822 for API 2010, and the absolute
//! URLs of v1 resources built from the engine's public base URL.

use engine::Timestamp;
use time::format_description::well_known::Rfc2822;
use time::macros::format_description;
use time::OffsetDateTime;

fn datetime(ts: Timestamp) -> OffsetDateTime {
    let nanos = i128::from(ts.millis()) * 1_000_000;
    OffsetDateTime::from_unix_timestamp_nanos(nanos).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// `2014-05-14T10:50:02Z`, as TaskRouter v1 writes dates.
pub fn iso8601(ts: Timestamp) -> String {
    let fmt = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    datetime(ts).format(&fmt).unwrap_or_default()
}

/// `Fri, 18 Feb 2011 19:26:50 +0000`, as API 2010 writes dates.
pub fn rfc2822(ts: Timestamp) -> String {
    datetime(ts).format(&Rfc2822).unwrap_or_default()
}

/// Parses a v1 date parameter (`2014-05-14T10:50:02Z` or any RFC 3339 time) to a timestamp.
pub fn parse_iso8601(s: &str) -> Option<Timestamp> {
    let dt = OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()?;
    Some(Timestamp((dt.unix_timestamp_nanos() / 1_000_000) as i64))
}

/// Parses an API 2010 date filter (`YYYY-MM-DD`) to midnight UTC of that day.
pub fn parse_day(s: &str) -> Option<Timestamp> {
    let fmt = format_description!("[year]-[month]-[day]");
    let date = time::Date::parse(s, &fmt).ok()?;
    Some(Timestamp(date.midnight().assume_utc().unix_timestamp() * 1000))
}

/// Builds absolute v1 URLs and relative 2010 URIs.
#[derive(Debug, Clone)]
pub struct Urls {
    /// Scheme, host and port, no trailing slash, e.g. `http://127.0.0.1:8080`.
    base: String,
}

impl Urls {
    /// From the public base URL (a trailing `/` is dropped).
    pub fn new(base: &str) -> Urls {
        Urls { base: base.trim_end_matches('/').to_owned() }
    }

    /// The public base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `{base}/v1{path}`.
    pub fn v1(&self, path: &str) -> String {
        format!("{}/v1{path}", self.base)
    }

    /// `{base}/v1/Workspaces/{ws}{rest}`.
    pub fn workspace(&self, ws: impl std::fmt::Display, rest: &str) -> String {
        format!("{}/v1/Workspaces/{ws}{rest}", self.base)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_both_date_styles() {
        let ts = Timestamp::from_secs(1_298_057_210);
        assert_eq!(iso8601(ts), "2011-02-18T19:26:50Z");
        assert_eq!(rfc2822(ts), "Fri, 18 Feb 2011 19:26:50 +0000");
        assert_eq!(parse_iso8601("2011-02-18T19:26:50Z"), Some(ts));
        assert_eq!(parse_day("2011-02-18"), Some(Timestamp::from_secs(1_297_987_200)));
        assert_eq!(parse_day("18/02/2011"), None);
    }

    #[test]
    fn urls_are_absolute() {
        let urls = Urls::new("http://localhost:3000/");
        assert_eq!(urls.workspace("WS1", "/Tasks"), "http://localhost:3000/v1/Workspaces/WS1/Tasks");
    }
}
