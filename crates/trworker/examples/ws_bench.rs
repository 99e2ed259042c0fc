//! The worker app's benchmark of issue 5: REST task creation -> `reservation.created` frame on the worker's
//! WebSocket, and the memory cost of idle connected workers.
//!
//! Runs the app in-process exactly as `trworker serve` does in local mode, started by the same
//! `trworker::start::start` (embedded engine in a temporary data directory, the app reaching it over HTTP on
//! its own loopback URL, events fed in-process), on 127.0.0.1:
//!
//! 1. Latency. Creates N workers (`skills: ["support","bench"]`) in the demo workspace, a queue
//!    `skills HAS "bench"` (so the demo workers never take a task) and a workflow with a one-hour
//!    reservation timeout, mints each worker's token with `WorkerCapability` (sign-in is rate-limited per
//!    address), connects N sockets (`hello`, waits for the first `state`), sets every worker Available, then
//!    creates T tasks (default N: each worker gets exactly one reservation) paced at R per second. A task's
//!    latency runs from the instant just before its POST is handed to the HTTP client (`Instant::now()` in
//!    the task that sends it) to the instant the client task reading the worker's socket has the complete
//!    `reservation.created` event frame (matched to the task by the frame's `task_sid`), before parsing it.
//!    The client shares the process and its two-thread runtime with the server, so its own scheduling and
//!    parsing are in the figure: an upper bound for what a separate client would see.
//!    A breakdown splits that at the instant the engine released the `reservation.created` event, seen by
//!    one more in-process subscriber of the stream the app's feed follows (events as applied, as in
//!    `trworker serve` local mode; `--durable-feed` follows the stream released after the durable commit
//!    instead): POST -> released is the engine's part (HTTP, routing, and with `--durable-feed` the commit),
//!    released -> frame the app's (event intake, frame, WebSocket write, client read).
//! 2. Memory. Closes those sockets, creates M more workers, and has a child process (this example run with
//!    `--connect URL`, tokens on its stdin) connect M sockets that then stay idle; prints this process's
//!    VmRSS (the server's: engine, app, the M server ends) before and after.
//!
//! With `--twilio`, the app runs in twilio mode against a separate engine, as against a `trworker engine`
//! whose workspace has no `EventCallbackUrl`: the engine alone on one port, the app on another, hearing of
//! each call on the worker's event channel over the event bridge (`trworker::app::channels`); the breakdown
//! then splits at the bridge's stream (events once durable).
//!
//! `cargo run --release -p trworker --example ws_bench -- [--workers N] [--rate R] [--tasks T] [--idle M]
//! [--durable-feed] [--twilio]` (`--help` describes each option).

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{json, Value};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use trworker::start::Feed;
use twilio_server::http::Limits;

#[path = "common/mod.rs"]
mod common;
use common::Servers;

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How many REST calls or socket handshakes run at once during setup.
const SETUP_CONCURRENCY: usize = 32;
/// How long to wait for the last reservation frames after the last POST.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a socket may take to get its first `state`.
const STATE_TIMEOUT: Duration = Duration::from_secs(60);

/// The worker app's benchmark: task POST -> `reservation.created` on the worker's WebSocket, and the memory
/// of idle connected workers (see the example's opening comment).
#[derive(clap::Parser)]
#[command(name = "ws_bench")]
struct Args {
    /// Connected workers in the latency part.
    #[arg(long, default_value_t = 1000)]
    workers: usize,
    /// Tasks created per second.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..))]
    rate: u32,
    /// Tasks to create (default: one per worker; at most --workers, each worker takes one reservation).
    #[arg(long)]
    tasks: Option<usize>,
    /// Idle connected workers in the memory part (0 skips it).
    #[arg(long, default_value_t = 10_000)]
    idle: usize,
    /// Feed the app the events released after the durable commit (as before `subscribe_applied`).
    #[arg(long)]
    durable_feed: bool,
    /// Twilio mode: the engine alone on one port (as `trworker engine`, no EventCallbackUrl) and the app on
    /// another, hearing of events on workers' event channels over the event bridge.
    #[arg(long)]
    twilio: bool,
    /// Internal: run as the idle clients' process, connecting to this WebSocket URL.
    #[arg(long, hide = true)]
    connect: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = <Args as clap::Parser>::parse();
    if let Some(url) = &args.connect {
        return idle_clients(url).await;
    }
    if args.tasks.unwrap_or(args.workers) > args.workers {
        let message = "--tasks must not exceed --workers: each worker takes one reservation";
        <Args as clap::CommandFactory>::command()
            .error(clap::error::ErrorKind::ValueValidation, message)
            .exit();
    }
    let dir = std::env::temp_dir().join(format!("trworker-wsbench-{}", trworker::config::random_hex()));
    let result = run(&args, &dir).await;
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// The app under test and a REST client for its engine.
struct Bench {
    app: trworker::app::AppState,
    base: String,
    ws_url: String,
    workspace: String,
    account_sid: String,
    auth_token: String,
    http: reqwest::Client,
}

impl Bench {
    async fn post(&self, path: &str, form: &[(&str, &str)]) -> anyhow::Result<Value> {
        let url = format!("{}/v1/Workspaces/{}/{path}", self.base, self.workspace);
        let response = self
            .http
            .post(&url)
            .basic_auth(&self.account_sid, Some(&self.auth_token))
            .form(form)
            .send()
            .await
            .with_context(|| format!("POST {url}"))?;
        let status = response.status();
        let body: Value = response.json().await.with_context(|| format!("POST {url}: body"))?;
        if !status.is_success() {
            bail!("POST {url}: {status} {body}");
        }
        Ok(body)
    }

    async fn get(&self, path: &str) -> anyhow::Result<Value> {
        let url = format!("{}/v1/Workspaces/{}/{path}", self.base, self.workspace);
        let response = self
            .http
            .get(&url)
            .basic_auth(&self.account_sid, Some(&self.auth_token))
            .send()
            .await
            .with_context(|| format!("GET {url}"))?;
        Ok(response.error_for_status()?.json().await?)
    }

    fn token(&self, worker_sid: &str) -> anyhow::Result<String> {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
        twilio::token::WorkerCapability::new(&self.account_sid, &self.auth_token, &self.workspace, worker_sid)
            .ttl(Duration::from_secs(3600))
            .allow_activity_updates(true)
            .allow_reservation_updates(true)
            .to_jwt(now)
            .map_err(|e| anyhow!("cannot mint a token: {e}"))
    }

    /// Creates `n` workers named `prefix-i`; returns their SIDs.
    async fn create_workers(&self, prefix: &str, n: usize) -> anyhow::Result<Vec<String>> {
        let attributes = json!({ "skills": ["support", "bench"] }).to_string();
        let results: Vec<anyhow::Result<String>> = futures_util::stream::iter(0..n)
            .map(|i| {
                let attributes = attributes.clone();
                async move {
                    let name = format!("{prefix}-{i}");
                    let body = self
                        .post("Workers", &[("FriendlyName", name.as_str()), ("Attributes", &attributes)])
                        .await?;
                    sid_of(&body)
                }
            })
            .buffer_unordered(SETUP_CONCURRENCY)
            .collect()
            .await;
        results.into_iter().collect()
    }

    /// Opens `/api/ws`, says hello and waits for the first `state`.
    async fn connect_all(&self, workers: &[String]) -> anyhow::Result<Vec<Socket>> {
        let tokens = workers.iter().map(|w| self.token(w)).collect::<anyhow::Result<Vec<_>>>()?;
        connect_all(&self.ws_url, &tokens).await
    }
}

/// Opens `/api/ws`, says hello with `token` and waits for the first `state`.
async fn connect(ws_url: &str, token: &str) -> anyhow::Result<Socket> {
    // Small client buffers (tungstenite's default read buffer is 128 KiB): the client's share stays small.
    let config = WebSocketConfig::default().read_buffer_size(4096).write_buffer_size(0);
    let (mut socket, _) = tokio_tungstenite::connect_async_with_config(ws_url, Some(config), true).await?;
    let hello = json!({ "type": "hello", "token": token, "last_seq": null });
    socket.send(Message::Text(hello.to_string().into())).await?;
    let first_state = async {
        while let Some(frame) = socket.next().await {
            if let Message::Text(text) = frame? {
                let value: Value = serde_json::from_str(&text)?;
                match value.get("type").and_then(Value::as_str) {
                    Some("state") => return Ok(()),
                    Some("error") => bail!("the app refused the socket: {value}"),
                    _ => {}
                }
            }
        }
        bail!("the socket closed before its first state")
    };
    tokio::time::timeout(STATE_TIMEOUT, first_state).await.context("no first state in time")??;
    Ok(socket)
}

async fn connect_all(ws_url: &str, tokens: &[String]) -> anyhow::Result<Vec<Socket>> {
    let results: Vec<anyhow::Result<Socket>> = futures_util::stream::iter(tokens)
        .map(|t| connect(ws_url, t))
        .buffered(SETUP_CONCURRENCY)
        .collect()
        .await;
    results.into_iter().collect()
}

/// The idle clients' process (`--connect URL`): reads one token a line from stdin up to an empty line,
/// connects a socket for each, prints `connected N` (or `error …`), and keeps them open until stdin closes.
async fn idle_clients(ws_url: &str) -> anyhow::Result<()> {
    use std::io::{BufRead as _, Write as _};
    let tokens = tokio::task::spawn_blocking(|| {
        std::io::stdin()
            .lock()
            .lines()
            .map_while(Result::ok)
            .take_while(|line| !line.is_empty())
            .collect::<Vec<String>>()
    })
    .await?;
    let sockets = match connect_all(ws_url, &tokens).await {
        Ok(sockets) => sockets,
        Err(error) => {
            println!("error {error:#}");
            return Ok(());
        }
    };
    println!("connected {}", sockets.len());
    std::io::stdout().flush()?;
    tokio::task::spawn_blocking(|| std::io::stdin().lock().lines().count()).await?;
    drop(sockets);
    Ok(())
}

fn sid_of(body: &Value) -> anyhow::Result<String> {
    body.get("sid").and_then(Value::as_str).map(str::to_owned).with_context(|| format!("no sid in {body}"))
}

/// The process's resident set size in kB, from /proc/self/status.
fn rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// How many file descriptors the process has open.
fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map(|d| d.count()).unwrap_or(0)
}

fn mib(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

async fn run(args: &Args, dir: &Path) -> anyhow::Result<()> {
    // As `trworker serve` sets them: the open-files limit raised to its hard limit, for the idle sockets.
    let mut limits = Limits::default();
    limits.fit_to_open_files_limit();
    let feed = if args.durable_feed { Feed::Durable } else { Feed::Applied };
    let servers = Servers::start(args.twilio, dir, feed, limits, |_| {}).await?;
    let (app, engine_started) = (&servers.app, servers.engine_server());
    let embedded = engine_started.engine.clone().context("there is an engine")?;
    let workspace =
        embedded.workspace_sid.map(|s| s.to_string()).context("the demo seed has no workspace")?;
    let bench = Bench {
        app: app.app.clone().context("the app is served")?,
        ws_url: format!("ws://{}/api/ws", app.addr),
        base: engine_started.listening.clone(),
        workspace,
        account_sid: embedded.credentials.account_sid.clone(),
        auth_token: embedded.credentials.auth_token.clone(),
        http: reqwest::Client::builder().pool_max_idle_per_host(256).build()?,
    };
    println!("{}", servers.banner());

    // The stream the app's events come from: in twilio mode the event bridge's (durable), else the feed's.
    let events = if args.durable_feed || args.twilio {
        embedded.handle.subscribe()
    } else {
        embedded.handle.subscribe_applied()
    };
    let (engine_watch, released) = watch_engine(bench.account_sid.clone(), events);
    latency(&bench, args, &released).await?;
    engine_watch.abort();
    if args.idle > 0 {
        idle(&bench, args.idle).await?;
    }
    servers.stop().await
}

/// What a socket saw: the task its new reservation is for, and when the `reservation.created` frame came.
struct Arrival {
    task_sid: String,
    at: Instant,
}

/// Reads a worker's socket: each `reservation.created` frame's arrival, with the task it names.
async fn watch(mut socket: Socket, tx: mpsc::UnboundedSender<Arrival>, states: Arc<AtomicUsize>) {
    let debug = std::env::var_os("WS_BENCH_DEBUG").is_some();
    while let Some(Ok(frame)) = socket.next().await {
        let at = Instant::now();
        let Message::Text(text) = frame else { continue };
        let Ok(value) = serde_json::from_str::<Value>(&text) else { continue };
        if debug {
            eprintln!("frame: {}", text.chars().take(600).collect::<String>());
        }
        match value.get("type").and_then(Value::as_str) {
            Some("event")
                if value.get("event_type").and_then(Value::as_str) == Some("reservation.created") =>
            {
                if let Some(task) = value.get("task_sid").and_then(Value::as_str) {
                    let _ = tx.send(Arrival { task_sid: task.to_owned(), at });
                }
            }
            Some("state") => {
                states.fetch_add(1, Ordering::Relaxed);
            }
            _ => {}
        }
    }
}

/// Records when the engine releases each `reservation.created` event (task SID -> instant), as an
/// in-process subscriber of its event stream.
fn watch_engine(
    account_sid: String,
    mut events: tokio::sync::broadcast::Receiver<Arc<engine::Event>>,
) -> (tokio::task::JoinHandle<()>, Arc<std::sync::Mutex<HashMap<String, Instant>>>) {
    let released = Arc::new(std::sync::Mutex::new(HashMap::new()));
    let map = released.clone();
    let handle = tokio::spawn(async move {
        loop {
            match events.recv().await {
                Ok(event) => {
                    let at = Instant::now();
                    let fields = twilio_server::callbacks::event_fields(&account_sid, &event);
                    let get = |name: &str| fields.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
                    if get("EventType").as_deref() == Some("reservation.created") {
                        if let (Some(task), Ok(mut map)) = (get("TaskSid"), map.lock()) {
                            map.insert(task, at);
                        }
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            }
        }
    });
    (handle, released)
}

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted.get(rank - 1).copied().unwrap_or_default()
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1000.0)
}

async fn latency(
    bench: &Bench,
    args: &Args,
    released: &std::sync::Mutex<HashMap<String, Instant>>,
) -> anyhow::Result<()> {
    let tasks = args.tasks.unwrap_or(args.workers);
    println!("latency: {} workers, {tasks} tasks at {}/s", args.workers, args.rate);

    let activities = bench.get("Activities?PageSize=50").await?;
    let available = activities
        .get("activities")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|a| a.get("friendly_name").and_then(Value::as_str) == Some("Available"))
        .and_then(|a| a.get("sid").and_then(Value::as_str))
        .context("the demo workspace has no Available activity")?
        .to_owned();
    let queue = sid_of(
        &bench
            .post("TaskQueues", &[("FriendlyName", "bench"), ("TargetWorkers", "skills HAS \"bench\"")])
            .await?,
    )?;
    let configuration = json!({ "task_routing": { "filters": [], "default_filter": { "queue": queue } } });
    let workflow = sid_of(
        &bench
            .post(
                "Workflows",
                &[
                    ("FriendlyName", "bench"),
                    ("Configuration", &configuration.to_string()),
                    ("TaskReservationTimeout", "3600"),
                ],
            )
            .await?,
    )?;

    let started = Instant::now();
    let workers = bench.create_workers("bench", args.workers).await?;
    println!("  created {} workers in {:.1} s", workers.len(), started.elapsed().as_secs_f64());
    let started = Instant::now();
    let sockets = bench.connect_all(&workers).await?;
    println!("  connected {} sockets in {:.1} s", sockets.len(), started.elapsed().as_secs_f64());
    // Each signed-in worker's event channel must be up before its calls come, or they would reach the page
    // only in the state rebuilt when it connects.
    let deadline = Instant::now() + STATE_TIMEOUT;
    while bench.app.event_channels().1 < workers.len() {
        if Instant::now() > deadline {
            bail!(
                "only {:?} (open, connected) event channels after {STATE_TIMEOUT:?}",
                bench.app.event_channels()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!("  {} event channels connected in {:.1} s", workers.len(), started.elapsed().as_secs_f64());

    let (tx, mut rx) = mpsc::unbounded_channel();
    let states = Arc::new(AtomicUsize::new(0));
    let watchers: Vec<_> =
        sockets.into_iter().map(|s| tokio::spawn(watch(s, tx.clone(), states.clone()))).collect();
    drop(tx);

    let started = Instant::now();
    let results: Vec<anyhow::Result<Value>> = futures_util::stream::iter(&workers)
        .map(|w| {
            let available = available.as_str();
            async move { bench.post(&format!("Workers/{w}"), &[("ActivitySid", available)]).await }
        })
        .buffer_unordered(SETUP_CONCURRENCY)
        .collect()
        .await;
    results.into_iter().collect::<anyhow::Result<Vec<_>>>()?;
    println!("  set {} workers Available in {:.1} s", workers.len(), started.elapsed().as_secs_f64());
    // Let the app push the Available states before the clock starts.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let states_before = states.load(Ordering::Relaxed);

    // Paced creation: task i's POST starts at start + i/R, each on its own tokio task.
    let workflow = Arc::new(workflow);
    let start = tokio::time::Instant::now();
    let mut posts = Vec::with_capacity(tasks);
    for i in 0..tasks {
        let due = start + Duration::from_secs_f64(i as f64 / f64::from(args.rate));
        tokio::time::sleep_until(due).await;
        let http = bench.http.clone();
        let url = format!("{}/v1/Workspaces/{}/Tasks", bench.base, bench.workspace);
        let (account, auth) = (bench.account_sid.clone(), bench.auth_token.clone());
        let workflow = workflow.clone();
        posts.push(tokio::spawn(async move {
            let attributes = json!({ "bench": i }).to_string();
            let sent = Instant::now();
            let response = http
                .post(&url)
                .basic_auth(&account, Some(&auth))
                .form(&[("WorkflowSid", workflow.as_str()), ("Attributes", attributes.as_str())])
                .send()
                .await?;
            let status = response.status();
            let body: Value = response.json().await?;
            let answered = sent.elapsed();
            if !status.is_success() {
                bail!("POST Tasks: {status} {body}");
            }
            Ok::<_, anyhow::Error>((sid_of(&body)?, sent, answered))
        }));
    }
    let pacing = start.elapsed();
    let mut sent_at: HashMap<String, Instant> = HashMap::with_capacity(tasks);
    let mut answered = Vec::with_capacity(tasks);
    let mut failed = 0usize;
    for post in posts {
        match post.await {
            Ok(Ok((sid, sent, took))) => {
                sent_at.insert(sid, sent);
                answered.push(took);
            }
            Ok(Err(e)) => {
                failed += 1;
                if failed <= 3 {
                    eprintln!("  task POST failed: {e:#}");
                }
            }
            Err(e) => bail!("a POST task panicked: {e}"),
        }
    }
    println!(
        "  {} POSTs issued over {:.2} s ({:.0}/s achieved), {failed} failed",
        tasks,
        pacing.as_secs_f64(),
        tasks as f64 / pacing.as_secs_f64().max(1e-9)
    );

    let mut arrivals: HashMap<String, Instant> = HashMap::with_capacity(tasks);
    let deadline = tokio::time::Instant::now() + DRAIN_TIMEOUT;
    while arrivals.len() < sent_at.len() {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(a)) => {
                arrivals.insert(a.task_sid, a.at);
            }
            Ok(None) | Err(_) => break,
        }
    }
    for w in &watchers {
        w.abort();
    }

    let mut latencies: Vec<Duration> = sent_at
        .iter()
        .filter_map(|(sid, sent)| arrivals.get(sid).map(|at| at.saturating_duration_since(*sent)))
        .collect();
    latencies.sort();
    answered.sort();
    println!(
        "  task POST -> reservation.created frame: count {} of {} tasks, p50 {}, p90 {}, p99 {}, max {}",
        latencies.len(),
        tasks,
        ms(percentile(&latencies, 0.50)),
        ms(percentile(&latencies, 0.90)),
        ms(percentile(&latencies, 0.99)),
        ms(latencies.last().copied().unwrap_or_default()),
    );
    let released = released.lock().map(|m| m.clone()).unwrap_or_default();
    let mut engine_part = Vec::with_capacity(tasks);
    let mut app_part = Vec::with_capacity(tasks);
    for (sid, sent) in &sent_at {
        if let (Some(out), Some(at)) = (released.get(sid), arrivals.get(sid)) {
            engine_part.push(out.saturating_duration_since(*sent));
            app_part.push(at.saturating_duration_since(*out));
        }
    }
    engine_part.sort();
    app_part.sort();
    println!(
        "  breakdown ({} tasks): POST -> engine released the event p50 {}, p99 {}; released -> frame read p50 {}, p99 {}",
        app_part.len(),
        ms(percentile(&engine_part, 0.50)),
        ms(percentile(&engine_part, 0.99)),
        ms(percentile(&app_part, 0.50)),
        ms(percentile(&app_part, 0.99)),
    );
    println!(
        "  (for reference) task POST response time: p50 {}, p99 {}, max {}; state frames pushed meanwhile: {}",
        ms(percentile(&answered, 0.50)),
        ms(percentile(&answered, 0.99)),
        ms(answered.last().copied().unwrap_or_default()),
        states.load(Ordering::Relaxed).saturating_sub(states_before),
    );
    // Let the aborted sockets close before the memory part (both ends live in this process, and the idle
    // part needs nearly all of its file descriptors).
    let deadline = Instant::now() + Duration::from_secs(10);
    while open_fds() > 600 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Ok(())
}

async fn idle(bench: &Bench, m: usize) -> anyhow::Result<()> {
    use std::io::{BufRead as _, Write as _};
    println!("idle: {m} connected workers (client sockets in a child process)");
    let before_workers = rss_kb().unwrap_or(0);
    let started = Instant::now();
    let workers = bench.create_workers("idle", m).await?;
    println!("  created {} workers in {:.1} s", workers.len(), started.elapsed().as_secs_f64());
    let tokens = workers.iter().map(|w| bench.token(w)).collect::<anyhow::Result<Vec<_>>>()?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = rss_kb().unwrap_or(0);
    let started = Instant::now();
    let mut child = std::process::Command::new(std::env::current_exe()?)
        .args(["--connect", bench.ws_url.as_str()])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .context("cannot start the idle clients' process")?;
    let mut stdin = child.stdin.take().context("no stdin")?;
    let stdout = child.stdout.take().context("no stdout")?;
    // The pipe is blocking: write and read on their own threads, off the runtime that serves the sockets.
    let writer = std::thread::spawn(move || -> std::io::Result<std::process::ChildStdin> {
        for token in &tokens {
            writeln!(stdin, "{token}")?;
        }
        writeln!(stdin)?;
        stdin.flush()?;
        Ok(stdin)
    });
    let line = tokio::task::spawn_blocking(move || {
        std::io::BufReader::new(stdout).lines().next().and_then(Result::ok).unwrap_or_default()
    })
    .await?;
    let stdin = writer.join().map_err(|_| anyhow!("the token writer panicked"))??;
    let connected: usize = match line.strip_prefix("connected ") {
        Some(n) => n.trim().parse()?,
        None => {
            let _ = child.kill();
            bail!("the idle clients failed: {line}");
        }
    };
    println!("  connected {connected} sockets in {:.1} s", started.elapsed().as_secs_f64());
    tokio::time::sleep(Duration::from_secs(3)).await;
    let after = rss_kb().unwrap_or(0);
    println!(
        "  server process VmRSS: {:.1} MiB before the workers, {:.1} MiB before the sockets, {:.1} MiB with {} idle sockets",
        mib(before_workers),
        mib(before),
        mib(after),
        connected
    );
    println!(
        "  per connection (server end only): {:.1} KiB",
        after.saturating_sub(before) as f64 / connected.max(1) as f64
    );
    drop(stdin);
    let _ = child.wait();
    Ok(())
}
