//! The supervisor page's benchmark of issue 25: 1,000 workers, 50 activity changes a second, each change on
//! the supervisor's WebSocket within a second, and the server's added CPU.
//!
//! Runs the app in-process as `trworker serve` does (local mode by default: the embedded engine, the
//! workspace channel in process; `--twilio`: the engine alone on one port and the app on another, hearing
//! the workspace's v1 event channel over the event bridge), started by `trworker::start::start`:
//!
//! 1. Creates N workers (Offline) in the demo workspace.
//! 2. Baseline: for S seconds, changes R workers' activity a second over the engine's REST API (round
//!    robin, each to Available or Offline in turn) with no supervisor page open, and reads this process's
//!    CPU time (user + system, `/proc/self/stat`) over the phase.
//! 3. Watched: signs in as a supervisor, opens `/api/supervisor/ws` and waits for the first picture, then
//!    does the same S seconds of changes. A change's latency runs from just before its POST is handed to
//!    the HTTP client to the instant the socket's reader has the `workers` message that shows the worker in
//!    its new activity. The CPU time of the phase, less the baseline's, is what the supervisor page adds
//!    (the load generator and the engine cost the same in both phases). The reader shares the process.
//!
//! `cargo run --release -p trworker --example supervisor_bench -- [--workers N] [--rate R] [--seconds S]
//! [--twilio]` (`--help` describes each option).

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};
use futures_util::{SinkExt as _, StreamExt as _};
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::Message;
use trworker::start::Feed;
use twilio::client::taskrouter::{ActivityFilter, CreateWorker, UpdateWorker};
use twilio_server::http::Limits;

#[path = "common/mod.rs"]
mod common;
use common::Servers;

/// REST calls at once while workers are created.
const SETUP_CONCURRENCY: usize = 32;
/// How long the last changes may take to show after the last POST.
const DRAIN: Duration = Duration::from_secs(5);
/// Linux's USER_HZ: the unit of `/proc/self/stat`'s times on every architecture Linux runs on today.
const TICKS_PER_SECOND: f64 = 100.0;

/// The supervisor page's benchmark: worker activity changes over REST, each timed to the supervisor
/// socket's message, and the server's CPU with and without the page (see the example's opening comment).
#[derive(clap::Parser)]
#[command(name = "supervisor_bench")]
struct Args {
    /// Workers in the workspace.
    #[arg(long, default_value_t = 1000, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..))]
    workers: usize,
    /// Activity changes per second.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..))]
    rate: u32,
    /// How long each measured phase lasts.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..))]
    seconds: u64,
    /// Twilio mode: the engine alone, the supervisor page fed by the workspace's channel over the event bridge.
    #[arg(long)]
    twilio: bool,
}

fn main() -> anyhow::Result<()> {
    let args = <Args as clap::Parser>::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let dir = std::env::temp_dir().join(format!("trworker-supervisor-bench-{}", std::process::id()));
    let result = runtime.block_on(run(&args, &dir));
    let _ = std::fs::remove_dir_all(&dir);
    result
}

/// This process's CPU time so far (user + system), in seconds.
fn cpu_seconds() -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").context("read /proc/self/stat")?;
    // The fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')').map(|(_, rest)| rest).context("/proc/self/stat has no command")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the whole line; `rest` starts at field 3.
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).context("a CPU time field");
    Ok((ticks(11)? + ticks(12)?) / TICKS_PER_SECOND)
}

/// Changes not seen on the page yet: (worker, activity name) -> when the change was sent.
type Pending = Arc<Mutex<HashMap<(String, String), Instant>>>;

/// What the bench talks to.
struct Bench {
    admin: twilio::Client,
    app_base: String,
    ws_url: String,
    supervisor_password: String,
    workers: Vec<String>,
    /// Activity SIDs by name.
    activities: HashMap<String, String>,
}

async fn run(args: &Args, dir: &Path) -> anyhow::Result<()> {
    let servers = Servers::start(args.twilio, dir, Feed::Applied, Limits::default(), |config| {
        config.supervisor_password = "bench-supervisor".into();
    })
    .await?;
    let (app, engine_started) = (&servers.app, servers.engine_server());
    let embedded = engine_started.engine.clone().context("there is an engine")?;
    let workspace = embedded.workspace_sid.context("the demo seed has no workspace")?.to_string();
    let credentials = &embedded.credentials;
    let admin = twilio::Client::new(
        twilio::Config::new(&credentials.account_sid, &credentials.auth_token)
            .base_urls(&engine_started.listening, &engine_started.listening),
    )?
    .with_workspace(&workspace);
    let state = app.app.clone().context("the app is served")?;
    let activities = admin
        .list_activities(&ActivityFilter::default())
        .all()
        .await?
        .into_iter()
        .filter_map(|a| Some((a.friendly_name?, a.sid)))
        .collect::<HashMap<_, _>>();
    println!("{}", servers.banner());
    let workers = create_workers(&admin, &activities, args.workers).await?;
    let bench = Bench {
        admin,
        app_base: app.listening.clone(),
        ws_url: format!("ws://{}/api/supervisor/ws", app.addr),
        supervisor_password: state.config().supervisor_password.clone(),
        workers,
        activities,
    };

    println!("baseline: {} changes/s for {} s with no supervisor page", args.rate, args.seconds);
    let before = cpu_seconds()?;
    let sent = changes(&bench, args, 0, None).await?;
    let baseline = cpu_seconds()? - before;
    println!(
        "  {sent} changes, CPU {baseline:.2} s ({:.1}% of a core)",
        100.0 * baseline / args.seconds as f64
    );

    println!("watched: the same with a supervisor page open");
    let pending: Pending = Arc::default();
    let latencies: Arc<Mutex<Vec<Duration>>> = Arc::default();
    let reader = watch(&bench, pending.clone(), latencies.clone()).await?;
    let before = cpu_seconds()?;
    let sent = changes(&bench, args, sent, Some(&pending)).await?;
    let watched = cpu_seconds()? - before;
    let deadline = Instant::now() + DRAIN;
    while Instant::now() < deadline && pending.lock().map(|p| !p.is_empty()).unwrap_or(false) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    reader.abort();
    let mut seen = latencies.lock().map(|l| l.clone()).unwrap_or_default();
    seen.sort();
    let missing = pending.lock().map(|p| p.len()).unwrap_or(0);
    let pct = |p: f64| seen.get(((seen.len() as f64 * p).ceil() as usize).saturating_sub(1)).copied();
    let within = seen.iter().filter(|d| **d <= Duration::from_secs(1)).count();
    println!(
        "  {sent} changes, {} seen on the page, {missing} not seen within {DRAIN:?} of the last",
        seen.len()
    );
    println!(
        "  latency p50 {:?}, p90 {:?}, p99 {:?}, max {:?}; within 1 s: {within} of {sent}",
        pct(0.5).unwrap_or_default(),
        pct(0.9).unwrap_or_default(),
        pct(0.99).unwrap_or_default(),
        seen.last().copied().unwrap_or_default()
    );
    println!(
        "  CPU {watched:.2} s ({:.1}% of a core); added by the supervisor page: {:.2} s, {:.1}% of a core",
        100.0 * watched / args.seconds as f64,
        watched - baseline,
        100.0 * (watched - baseline) / args.seconds as f64
    );

    servers.stop().await?;
    Ok(())
}

async fn create_workers(
    admin: &twilio::Client,
    activities: &HashMap<String, String>,
    count: usize,
) -> anyhow::Result<Vec<String>> {
    let offline = activities.get("Offline").context("the demo workspace has an Offline activity")?.clone();
    let created: Vec<anyhow::Result<String>> = futures_util::stream::iter(0..count)
        .map(|n| {
            let offline = offline.clone();
            async move {
                let params = CreateWorker {
                    friendly_name: format!("sup-{n:04}"),
                    activity_sid: Some(offline),
                    attributes: Some(json!({ "skills": ["bench"] })),
                };
                Ok(admin.create_worker(&params).await?.sid)
            }
        })
        .buffer_unordered(SETUP_CONCURRENCY)
        .collect()
        .await;
    created.into_iter().collect()
}

/// Signs in as a supervisor, opens the socket, waits for the first picture and spawns its reader, which
/// times each change in `pending` when a `workers` message shows it.
async fn watch(
    bench: &Bench,
    pending: Pending,
    latencies: Arc<Mutex<Vec<Duration>>>,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let answer: Value = reqwest::Client::new()
        .post(format!("{}/api/supervisor/token", bench.app_base))
        .json(&json!({ "name": "bench", "password": bench.supervisor_password }))
        .send()
        .await?
        .error_for_status()?
        .json()
        .await?;
    let token = answer["token"].as_str().context("a supervisor token")?.to_owned();
    let (mut socket, _) = tokio_tungstenite::connect_async(bench.ws_url.as_str()).await?;
    socket.send(Message::Text(json!({ "type": "hello", "token": token }).to_string().into())).await?;
    loop {
        let Some(message) = socket.next().await else { bail!("the socket closed before the picture") };
        if let Message::Text(text) = message? {
            let value: Value = serde_json::from_str(text.as_str())?;
            if value["type"] == "picture" {
                let shown = value["workers"].as_array().map(Vec::len).unwrap_or(0);
                println!("  the first picture has {shown} workers");
                break;
            }
        }
    }
    Ok(tokio::spawn(async move {
        while let Some(Ok(message)) = socket.next().await {
            let Message::Text(text) = message else { continue };
            let at = Instant::now();
            let Ok(value) = serde_json::from_str::<Value>(text.as_str()) else { continue };
            if value["type"] != "workers" {
                continue;
            }
            for worker in value["workers"].as_array().into_iter().flatten() {
                let key = (
                    worker["sid"].as_str().unwrap_or_default().to_owned(),
                    worker["activity_name"].as_str().unwrap_or_default().to_owned(),
                );
                let sent = pending.lock().ok().and_then(|mut p| p.remove(&key));
                if let (Some(sent), Ok(mut latencies)) = (sent, latencies.lock()) {
                    latencies.push(at - sent);
                }
            }
        }
    }))
}

/// `rate` changes a second for `seconds`, starting at change number `from` (round robin over the workers,
/// each to Available or Offline in turn), each timed in `pending` when given: how many were sent.
async fn changes(
    bench: &Bench,
    args: &Args,
    from: usize,
    pending: Option<&Pending>,
) -> anyhow::Result<usize> {
    let total = args.rate as usize * args.seconds as usize;
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(args.rate)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut requests = Vec::with_capacity(total);
    for n in from..from + total {
        ticker.tick().await;
        let worker = bench.workers[n % bench.workers.len()].clone();
        // Every worker starts Offline: its first change makes it Available, the next Offline, and so on.
        let name = if (n / bench.workers.len()).is_multiple_of(2) { "Available" } else { "Offline" };
        let activity_sid = bench.activities.get(name).cloned();
        let admin = bench.admin.clone();
        let pending = pending.cloned();
        requests.push(tokio::spawn(async move {
            if let Some(pending) = &pending {
                if let Ok(mut pending) = pending.lock() {
                    pending.insert((worker.clone(), name.to_owned()), Instant::now());
                }
            }
            admin.update_worker(&worker, &UpdateWorker { activity_sid, ..UpdateWorker::default() }).await
        }));
    }
    for request in requests {
        request.await??;
    }
    Ok(total)
}
