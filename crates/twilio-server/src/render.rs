//! How values look on the wire: ISO-8601 dates for TaskRouter v1, RFC 2822 for API 2010, and the absolute
//! URLs of v1 resources built from the engine's public base URL.

use engine::Timestamp;
use time::format_description::well_known::Rfc2822;
use time::macros::format_description;
use time::OffsetDateTime;

/// TaskRouter v1's date format, for the years [`iso8601`] does not write by hand.
const ISO8601: &[time::format_description::BorrowedFormatItem<'static>] =
    format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");

fn datetime(ts: Timestamp) -> OffsetDateTime {
    let nanos = i128::from(ts.millis()) * 1_000_000;
    OffsetDateTime::from_unix_timestamp_nanos(nanos).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// `2014-05-14T10:50:02Z`, as TaskRouter v1 writes dates.
///
/// Every v1 body carries several of these, so years 0 to 9999 (all a client can send or the clock can give)
/// are written by hand from the day count; other years go through `time`'s formatter.
pub fn iso8601(ts: Timestamp) -> String {
    let mut out = Vec::with_capacity(20);
    put_iso8601(&mut out, ts);
    // Only ASCII digits and separators, or the `time` crate's output, which is a `String`.
    String::from_utf8(out).unwrap_or_default()
}

/// Appends [`iso8601`]'s text to `out`, for bodies written without a `String` per date.
pub fn put_iso8601(out: &mut Vec<u8>, ts: Timestamp) {
    let secs = ts.secs();
    let (days, of_day) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    if !(0..=9999).contains(&year) {
        out.extend_from_slice(datetime(ts).format(ISO8601).unwrap_or_default().as_bytes());
        return;
    }
    for (n, after) in [
        (year / 100, ""),
        (year % 100, "-"),
        (month, "-"),
        (day, "T"),
        (of_day / 3600, ":"),
        (of_day / 60 % 60, ":"),
        (of_day % 60, "Z"),
    ] {
        // Every `n` is in 0..=99 here.
        out.push(b'0' + (n / 10) as u8);
        out.push(b'0' + (n % 10) as u8);
        out.extend_from_slice(after.as_bytes());
    }
}

/// Year, month (1-12) and day (1-31) of the proleptic Gregorian calendar for a count of days since
/// 1970-01-01 (Howard Hinnant's `civil_from_days`, valid for every `i64` day count this module can get).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
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
    /// `{base}/v1/Workspaces/`, which every workspace URL starts with.
    workspaces: String,
    /// Whether `workspaces` can go into a JSON string as it is (no `"`, `\` or control character, the
    /// only characters serde_json escapes); an operator may set the base URL to anything.
    json_plain: bool,
}

impl Urls {
    /// From the public base URL (a trailing `/` is dropped).
    pub fn new(base: &str) -> Urls {
        let base = base.trim_end_matches('/').to_owned();
        let workspaces = format!("{base}/v1/Workspaces/");
        let json_plain = workspaces.bytes().all(|c| c >= 0x20 && c != b'"' && c != b'\\');
        Urls { base, workspaces, json_plain }
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
        format!("{}{ws}{rest}", self.workspaces)
    }

    /// `{base}/v1/Workspaces/`, and whether it needs no escaping in a JSON string, for bodies that write
    /// their URLs straight into a buffer.
    pub fn workspaces(&self) -> (&str, bool) {
        (&self.workspaces, self.json_plain)
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
    fn the_hand_written_iso8601_agrees_with_the_time_crate() {
        let by_time = |ts: Timestamp| datetime(ts).format(ISO8601).unwrap();
        // Day, month, year and leap-year boundaries, the epoch and the ends of years 0 and 9999.
        let edges = [
            0,
            -1,
            951_782_399_999,
            951_782_400_000,
            4_107_542_399_999,
            -62_167_219_200_000,
            253_402_300_799_999,
            1_298_057_210_000,
        ];
        for ms in edges {
            assert_eq!(iso8601(Timestamp(ms)), by_time(Timestamp(ms)), "at {ms} ms");
        }
        // A pseudo-random walk over years 0 to 9999, with odd milliseconds.
        let (first, last) = (-62_167_219_200_000i64, 253_402_300_799_999i64);
        let mut ms = first;
        let mut step = 7_777_777_777i64;
        while ms <= last {
            assert_eq!(iso8601(Timestamp(ms)), by_time(Timestamp(ms)), "at {ms} ms");
            step = (step * 48_271) % 2_147_483_647 + 1_000_003_999;
            ms += step;
        }
        // Outside years 0 to 9999 it is whatever `time` writes.
        assert_eq!(iso8601(Timestamp(-62_167_219_200_001)), by_time(Timestamp(-62_167_219_200_001)));
    }

    #[test]
    fn urls_are_absolute() {
        let urls = Urls::new("http://localhost:3000/");
        assert_eq!(urls.workspace("WS1", "/Tasks"), "http://localhost:3000/v1/Workspaces/WS1/Tasks");
    }
}
