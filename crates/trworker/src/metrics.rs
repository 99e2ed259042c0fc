//! The metrics registry: a few atomic counters and histograms, rendered in Prometheus' text exposition format
//! (version 0.0.4) by `GET /metrics`.
//!
//! Written here rather than pulled in as a crate because what is needed is small: HTTP requests by route,
//! method and status with latency histograms, reservation outcomes, and gauges read at scrape time from the
//! parts that already know them (the WebSocket hub, the engine's queues, the callback deliverer). On the hot
//! path a request costs one read lock, one hash lookup of its route template and a few relaxed atomic adds.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// Upper bounds of the latency buckets, in microseconds (rendered in seconds): 100 µs to 10 s.
const BUCKETS_US: [u64; 14] = [
    100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 1_000_000, 2_500_000,
    10_000_000,
];

/// The reservation outcomes counted, as the event types' last part (`reservation.accepted`, ...).
pub const RESERVATION_OUTCOMES: [&str; 7] =
    ["created", "accepted", "rejected", "timeout", "canceled", "rescinded", "completed"];

/// Where the worker app heard of a TaskRouter event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventSource {
    /// The workspace's `EventCallbackUrl` (`POST /twilio/events`).
    Webhook,
    /// A worker's event channel (the event bridge, or the embedded engine in process).
    Channel,
}

impl EventSource {
    const ALL: [EventSource; 2] = [EventSource::Webhook, EventSource::Channel];

    fn label(self) -> &'static str {
        match self {
            EventSource::Webhook => "webhook",
            EventSource::Channel => "channel",
        }
    }
}

/// Route label of a request that matched no route; the raw path is never a label (it would let any client
/// create series without bound).
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// FNV-1a: the route map's keys are the router's own templates, never client input, so a fast hash with no
/// defence against chosen collisions is right here (SipHash showed in the per-request cost).
#[derive(Default)]
struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        let mut hash = if self.0 == 0 { 0xcbf2_9ce4_8422_2325 } else { self.0 };
        for byte in bytes {
            hash = (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3);
        }
        self.0 = hash;
    }
}

/// A latency histogram: the count and the cumulative counts are computed when rendering, so an observation
/// is two atomic adds.
#[derive(Default)]
struct Histogram {
    /// Observations per bucket (not cumulative); the last slot is above every bound.
    buckets: [AtomicU64; BUCKETS_US.len() + 1],
    sum_us: AtomicU64,
}

impl Histogram {
    fn observe(&self, elapsed: Duration) {
        let us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        let slot = BUCKETS_US.iter().position(|bound| us <= *bound).unwrap_or(BUCKETS_US.len());
        if let Some(bucket) = self.buckets.get(slot) {
            bucket.fetch_add(1, Ordering::Relaxed);
        }
        self.sum_us.fetch_add(us, Ordering::Relaxed);
    }

    /// Observations so far.
    fn count(&self) -> u64 {
        self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).sum()
    }
}

/// One series of HTTP requests: a route's method and status.
struct Series {
    method: String,
    status: u16,
    latency: Arc<Histogram>,
}

/// Every counter of one server. Share it as `Arc<Metrics>`.
#[derive(Default)]
pub struct Metrics {
    /// Route template -> its series. Routes are a fixed set (the router's templates, plus [`UNMATCHED_ROUTE`])
    /// and methods and statuses few, so this stays small.
    http: RwLock<HashMap<String, Vec<Series>, BuildHasherDefault<Fnv>>>,
    reservations: [AtomicU64; RESERVATION_OUTCOMES.len()],
    /// Events received, by [`EventSource`] in [`EventSource::ALL`]'s order.
    events: [AtomicU64; EventSource::ALL.len()],
    /// Event channels that connected again after a loss.
    channel_reconnects: AtomicU64,
}

impl Metrics {
    /// A registry with every counter at zero.
    pub fn new() -> Arc<Metrics> {
        Arc::new(Metrics::default())
    }

    /// Counts one answered request. `route` must be a route template (axum's `MatchedPath`) or
    /// [`UNMATCHED_ROUTE`].
    pub fn observe_http(&self, route: &str, method: &str, status: u16, elapsed: Duration) {
        let found = self.http.read().ok().and_then(|map| {
            map.get(route)?
                .iter()
                .find(|s| s.status == status && s.method == method)
                .map(|s| s.latency.clone())
        });
        let latency = match found {
            Some(latency) => latency,
            None => {
                let Ok(mut map) = self.http.write() else { return };
                let series = map.entry(route.to_owned()).or_default();
                match series.iter().find(|s| s.status == status && s.method == method) {
                    Some(s) => s.latency.clone(),
                    None => {
                        let latency = Arc::new(Histogram::default());
                        series.push(Series { method: method.to_owned(), status, latency: latency.clone() });
                        latency
                    }
                }
            }
        };
        latency.observe(elapsed);
    }

    /// Counts a TaskRouter event if it is a reservation outcome (`reservation.accepted`, ...); other event
    /// types are ignored.
    pub fn count_event(&self, event_type: &str) {
        let Some(outcome) = event_type.strip_prefix("reservation.") else { return };
        if let Some(i) = RESERVATION_OUTCOMES.iter().position(|o| *o == outcome) {
            if let Some(counter) = self.reservations.get(i) {
                counter.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Counts one event received from `source`.
    pub fn count_event_from(&self, source: EventSource) {
        if let Some(counter) = self.events.get(source as usize) {
            counter.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Counts one event channel connected again after a loss.
    pub fn count_channel_reconnect(&self) {
        self.channel_reconnects.fetch_add(1, Ordering::Relaxed);
    }

    /// Reservations seen with this outcome so far (0 for an unknown outcome).
    pub fn reservations(&self, outcome: &str) -> u64 {
        RESERVATION_OUTCOMES
            .iter()
            .position(|o| *o == outcome)
            .and_then(|i| self.reservations.get(i))
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }

    /// Appends the HTTP and reservation series to `out`.
    pub fn render(&self, out: &mut Exposition) {
        let mut series: Vec<(String, String, u16, Arc<Histogram>)> = Vec::new();
        if let Ok(map) = self.http.read() {
            for (route, route_series) in map.iter() {
                for s in route_series {
                    series.push((route.clone(), s.method.clone(), s.status, s.latency.clone()));
                }
            }
        }
        series.sort_by(|a, b| (&a.0, &a.1, a.2).cmp(&(&b.0, &b.1, b.2)));
        // Both HTTP metrics list the same rows in the same order: their labels are written once.
        let rows: Vec<(String, Arc<Histogram>)> = series
            .into_iter()
            .map(|(route, method, status, h)| (labels(&route, &method, status), h))
            .collect();
        out.header(
            "trworker_http_requests_total",
            "counter",
            "HTTP requests answered, by route template, method and status.",
        );
        for (labels, h) in &rows {
            out.sample("trworker_http_requests_total", labels, h.count());
        }
        out.header(
            "trworker_http_request_duration_seconds",
            "histogram",
            "Time from request to response head, by route template, method and status.",
        );
        for (labels, h) in &rows {
            let mut cumulative = 0;
            for (bound, bucket) in BUCKETS_US.iter().zip(h.buckets.iter()) {
                cumulative += bucket.load(Ordering::Relaxed);
                let le = format!("{labels},le=\"{}\"", seconds(*bound));
                out.sample("trworker_http_request_duration_seconds_bucket", &le, cumulative);
            }
            // The overflow slot completes the count, from the same loads, so +Inf is never below a bucket.
            let count = cumulative + h.buckets.last().map_or(0, |b| b.load(Ordering::Relaxed));
            out.sample(
                "trworker_http_request_duration_seconds_bucket",
                &format!("{labels},le=\"+Inf\""),
                count,
            );
            out.sample_f64(
                "trworker_http_request_duration_seconds_sum",
                labels,
                h.sum_us.load(Ordering::Relaxed) as f64 / 1e6,
            );
            out.sample("trworker_http_request_duration_seconds_count", labels, count);
        }
        out.header(
            "trworker_reservations_total",
            "counter",
            "Reservation events seen by the worker app (or the engine), by outcome.",
        );
        for (outcome, counter) in RESERVATION_OUTCOMES.iter().zip(self.reservations.iter()) {
            let labels = format!("outcome=\"{outcome}\"");
            out.sample("trworker_reservations_total", &labels, counter.load(Ordering::Relaxed));
        }
        out.header(
            "trworker_events_received_total",
            "counter",
            "TaskRouter events the worker app received, by source (webhook or event channel).",
        );
        for (source, counter) in EventSource::ALL.iter().zip(self.events.iter()) {
            let labels = format!("source=\"{}\"", source.label());
            out.sample("trworker_events_received_total", &labels, counter.load(Ordering::Relaxed));
        }
        out.counter(
            "trworker_event_channel_reconnects_total",
            "Workers' event channels that connected again after a loss.",
            self.channel_reconnects.load(Ordering::Relaxed),
        );
    }
}

fn labels(route: &str, method: &str, status: u16) -> String {
    format!("route=\"{}\",method=\"{}\",status=\"{status}\"", escape(route), escape(method))
}

/// Microseconds as seconds, without trailing zeros (`0.0001`, `2.5`, `10`).
fn seconds(us: u64) -> String {
    let whole = us / 1_000_000;
    let frac = us % 1_000_000;
    if frac == 0 {
        return whole.to_string();
    }
    let digits = format!("{frac:06}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

/// A label value with `\`, `"` and newlines escaped, as the exposition format requires.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// A page of the text exposition format being written.
#[derive(Default)]
pub struct Exposition {
    text: String,
}

impl Exposition {
    /// `# HELP` and `# TYPE` lines of a metric family.
    pub fn header(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.text, "# HELP {name} {help}");
        let _ = writeln!(self.text, "# TYPE {name} {kind}");
    }

    /// One sample with integer value; `labels` is `a="x",b="y"` (escaped) or empty.
    pub fn sample(&mut self, name: &str, labels: &str, value: u64) {
        if labels.is_empty() {
            let _ = writeln!(self.text, "{name} {value}");
        } else {
            let _ = writeln!(self.text, "{name}{{{labels}}} {value}");
        }
    }

    /// One sample with a floating-point value.
    pub fn sample_f64(&mut self, name: &str, labels: &str, value: f64) {
        if labels.is_empty() {
            let _ = writeln!(self.text, "{name} {value}");
        } else {
            let _ = writeln!(self.text, "{name}{{{labels}}} {value}");
        }
    }

    /// A gauge family with one unlabelled sample.
    pub fn gauge(&mut self, name: &str, help: &str, value: u64) {
        self.header(name, "gauge", help);
        self.sample(name, "", value);
    }

    /// A counter family with one unlabelled sample.
    pub fn counter(&mut self, name: &str, help: &str, value: u64) {
        self.header(name, "counter", help);
        self.sample(name, "", value);
    }

    /// The page.
    pub fn finish(self) -> String {
        self.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(metrics: &Metrics) -> String {
        let mut out = Exposition::default();
        metrics.render(&mut out);
        out.finish()
    }

    #[test]
    fn requests_land_in_their_series_and_buckets() {
        let metrics = Metrics::default();
        metrics.observe_http("/api/workspace", "GET", 200, Duration::from_micros(80));
        metrics.observe_http("/api/workspace", "GET", 200, Duration::from_millis(3));
        metrics.observe_http("/api/workspace", "GET", 401, Duration::from_millis(20));
        let text = render(&metrics);
        let ok = r#"route="/api/workspace",method="GET",status="200""#;
        assert!(text.contains(&format!("trworker_http_requests_total{{{ok}}} 2\n")), "{text}");
        assert!(text
            .contains(&format!("trworker_http_request_duration_seconds_bucket{{{ok},le=\"0.0001\"}} 1\n")));
        assert!(text
            .contains(&format!("trworker_http_request_duration_seconds_bucket{{{ok},le=\"0.0025\"}} 1\n")));
        assert!(
            text.contains(&format!("trworker_http_request_duration_seconds_bucket{{{ok},le=\"0.005\"}} 2\n"))
        );
        assert!(
            text.contains(&format!("trworker_http_request_duration_seconds_bucket{{{ok},le=\"+Inf\"}} 2\n"))
        );
        assert!(
            text.contains(&format!("trworker_http_request_duration_seconds_sum{{{ok}}} 0.00308\n")),
            "{text}"
        );
        assert!(text
            .contains(r#"trworker_http_requests_total{route="/api/workspace",method="GET",status="401"} 1"#));
    }

    #[test]
    fn only_reservation_outcomes_are_counted() {
        let metrics = Metrics::default();
        for event in [
            "reservation.accepted",
            "reservation.accepted",
            "reservation.timeout",
            "task.created",
            "reservation.nonsense",
        ] {
            metrics.count_event(event);
        }
        assert_eq!(metrics.reservations("accepted"), 2);
        assert_eq!(metrics.reservations("timeout"), 1);
        assert_eq!(metrics.reservations("rejected"), 0);
        assert!(render(&metrics).contains("trworker_reservations_total{outcome=\"accepted\"} 2\n"));
    }

    #[test]
    fn label_values_are_escaped_and_seconds_are_short() {
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        assert_eq!(seconds(100), "0.0001");
        assert_eq!(seconds(2_500_000), "2.5");
        assert_eq!(seconds(10_000_000), "10");
    }
}
