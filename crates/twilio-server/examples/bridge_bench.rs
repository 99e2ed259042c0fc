//! The event bridge's benchmark (issue 22): the server's memory per connected v2 channel, and the latency of
//! `reservation.created` on a worker's channel after its task is created over REST.
//!
//! The server is the real one: this spawns `trworker engine` (a release build, `--bin`, default
//! `target/release/trworker`; build it first with `cargo build --release -p trworker`) on a free loopback port
//! with a fresh data directory (`--data-dir`, default a new directory under `TMPDIR`), so it runs with its
//! store, its allocator (mimalloc) and its HTTP loop, in a process of its own: every memory figure is that
//! process's `VmRSS` (`/proc/PID/status`), never this client's. This process is the client: it sets the
//! workspace up over REST, mints each worker's AccessToken (signed with the auth token, as `trworker token`
//! does) and opens the channels itself, `GET /v1/wschannels?token=…` as twilio-taskrouter does, each reading
//! with a 4 KiB buffer so that 10,000 of them fit in the client.
//!
//! 1. Memory. Creates `--idle` workers (Offline), reads the server's RSS, opens one channel per worker (64
//!    handshakes at a time) and waits for every `init`, reads the RSS again, then once more after a heartbeat
//!    period (10 s, so each channel has sent a heartbeat frame and grown whatever its first write grows), and
//!    prints the difference per channel. Then closes those channels.
//! 2. Latency. Creates `--channels` workers, Available, in a queue `skills HAS "bench"` whose workflow
//!    reserves for an hour, opens their channels and waits for every `init`, then POSTs `--tasks` tasks
//!    (default: one per worker) at `--rate` per second, each POST on its own task so a slow answer does not
//!    hold the pace. A task's latency runs from the instant before its POST is handed to the HTTP client to
//!    the instant the task reading the worker's socket has the whole `reservation.created` frame (matched by
//!    the task's `bench` attribute). The channel sends an event once it is durable, as the REST reply leaves,
//!    so the figure includes the commit. The client shares the machine with the server.
//!
//! `cargo run --release -p twilio-server --example bridge_bench -- [--bin PATH] [--idle N] [--channels M]
//! [--rate R] [--tasks T] [--data-dir DIR]` (`--help` describes each); `--idle 0` or `--channels 0` skips a
//! part. Raise the open-files limit first (`ulimit -n 20000`): the server and this client each hold one
//! descriptor per channel.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use futures_util::{stream, StreamExt as _};
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message;
use twilio::token::{AccessToken, TaskRouterGrant};

type Error = Box<dyn std::error::Error + Send + Sync>;

/// REST calls or handshakes in flight at once during set-up.
const CONCURRENCY: usize = 64;
/// The engine's heartbeat period (`bridge::Options::default`), plus a second.
const AFTER_HEARTBEAT: Duration = Duration::from_secs(11);
/// How long the last frames may take after the last POST.
const DRAIN: Duration = Duration::from_secs(30);

/// The event bridge's benchmark: memory per connected channel, and task POST -> `reservation.created` on the
/// worker's channel (see the example's opening comment).
#[derive(clap::Parser)]
#[command(name = "bridge_bench")]
struct Args {
    /// The `trworker` binary to spawn as `trworker engine` [default: this checkout's target/release/trworker].
    #[arg(long)]
    bin: Option<PathBuf>,
    /// Channels opened and held in the memory part (0 skips it).
    #[arg(long, default_value_t = 10_000)]
    idle: usize,
    /// Workers with an open channel in the latency part (0 skips it).
    #[arg(long, default_value_t = 1_000)]
    channels: usize,
    /// Tasks created per second.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..))]
    rate: u32,
    /// Tasks to create [default: one per channel].
    #[arg(long)]
    tasks: Option<usize>,
    /// The engine's data directory [default: a new directory under TMPDIR, removed at the end].
    #[arg(long)]
    data_dir: Option<PathBuf>,
}

/// The spawned `trworker engine` and how to reach it; killed when dropped.
struct Server {
    child: Child,
    pid: u32,
    base: String,
    account: String,
    auth_token: String,
}

impl Server {
    /// Starts the engine and reads what it prints once it listens: its URL, account SID and auth token.
    fn start(bin: &Path, data_dir: &Path) -> Result<Server, Error> {
        let mut child = Command::new(bin)
            .args(["engine", "--port", "0", "--seed", "none", "--data-dir"])
            .arg(data_dir)
            .env_remove("ACCOUNT_SID")
            .env_remove("AUTH_TOKEN")
            .env_remove("PORT")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| {
                format!("cannot start {}: {e} (build it: cargo build --release -p trworker)", bin.display())
            })?;
        let pid = child.id();
        let mut lines = BufReader::new(child.stdout.take().ok_or("no stdout")?).lines();
        let (mut base, mut account, mut auth_token) = (None, None, None);
        for line in lines.by_ref() {
            let line = line?;
            let line = line.trim();
            if let Some(url) = line.split(" local TaskRouter engine at ").nth(1) {
                base = Some(url.trim().to_owned());
            } else if let Some(sid) = line.strip_prefix("account SID") {
                account = Some(sid.trim().to_owned());
            } else if let Some(token) = line.strip_prefix("auth token") {
                auth_token = Some(token.trim().to_owned());
                break;
            }
        }
        // The engine prints a few more lines; a thread drains them so it never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        let server = Server {
            child,
            pid,
            base: base.ok_or("the engine did not print its URL")?,
            account: account.ok_or("the engine did not print its account SID")?,
            auth_token: auth_token.ok_or("the engine did not print its auth token")?,
        };
        Ok(server)
    }

    /// Nanoseconds the server's threads have been on a CPU, and runnable but waiting for one, since they
    /// started (`/proc/PID/task/*/schedstat`): the second says how much of a latency is the machine's other
    /// load rather than the server's work.
    fn sched_ns(&self) -> Result<(u64, u64), Error> {
        let (mut on_cpu, mut waiting) = (0, 0);
        for thread in std::fs::read_dir(format!("/proc/{}/task", self.pid))? {
            let Ok(text) = std::fs::read_to_string(thread?.path().join("schedstat")) else { continue };
            let mut fields = text.split_whitespace().map(|f| f.parse::<u64>().unwrap_or(0));
            on_cpu += fields.next().unwrap_or(0);
            waiting += fields.next().unwrap_or(0);
        }
        Ok((on_cpu, waiting))
    }

    /// The server process's resident set, in KiB.
    fn rss_kib(&self) -> Result<u64, Error> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid))?;
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).ok_or("no VmRSS")?;
        Ok(line.split_whitespace().nth(1).ok_or("bad VmRSS")?.parse()?)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// REST with the account's Basic auth.
#[derive(Clone)]
struct Rest {
    client: reqwest::Client,
    base: String,
    account: String,
    auth_token: String,
}

impl Rest {
    async fn post(&self, path: &str, form: &[(&str, &str)]) -> Result<Value, Error> {
        let response = self
            .client
            .post(format!("{}{path}", self.base))
            .basic_auth(&self.account, Some(&self.auth_token))
            .form(form)
            .send()
            .await?;
        let status = response.status();
        let body: Value = response.json().await?;
        if !status.is_success() {
            return Err(format!("POST {path}: {status} {body}").into());
        }
        Ok(body)
    }

    async fn get(&self, path: &str) -> Result<Value, Error> {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .basic_auth(&self.account, Some(&self.auth_token))
            .send()
            .await?;
        Ok(response.error_for_status()?.json().await?)
    }
}

fn sid(v: &Value) -> Result<String, Error> {
    Ok(v["sid"].as_str().ok_or_else(|| format!("no sid in {v}"))?.to_owned())
}

/// The bench's workspace: its SID and its activities by name.
struct Workspace {
    sid: String,
    offline: String,
    available: String,
}

async fn workspace(rest: &Rest) -> Result<Workspace, Error> {
    let ws = sid(&rest.post("/v1/Workspaces", &[("FriendlyName", "bridge bench")]).await?)?;
    let activities = rest.get(&format!("/v1/Workspaces/{ws}/Activities?PageSize=100")).await?;
    let find = |name: &str| -> Result<String, Error> {
        let list = activities["activities"].as_array().ok_or("no activities")?;
        let a = list.iter().find(|a| a["friendly_name"] == name).ok_or_else(|| format!("no {name}"))?;
        sid(a)
    };
    let queue = rest
        .post(
            &format!("/v1/Workspaces/{ws}/TaskQueues"),
            &[("FriendlyName", "bench"), ("TargetWorkers", r#"skills HAS "bench""#)],
        )
        .await?;
    let config =
        serde_json::json!({"task_routing": {"filters": [], "default_filter": {"queue": sid(&queue)?}}});
    rest.post(
        &format!("/v1/Workspaces/{ws}/Workflows"),
        &[
            ("FriendlyName", "bench"),
            ("TaskReservationTimeout", "3600"),
            ("Configuration", &config.to_string()),
        ],
    )
    .await?;
    Ok(Workspace { offline: find("Offline")?, available: find("Available")?, sid: ws })
}

async fn workers(
    rest: &Rest,
    ws: &str,
    activity: &str,
    prefix: &str,
    n: usize,
) -> Result<Vec<String>, Error> {
    let attributes = r#"{"skills":["bench"]}"#;
    let made: Vec<Result<String, Error>> = stream::iter(0..n)
        .map(|i| async move {
            let name = format!("{prefix}-{i}");
            let path = format!("/v1/Workspaces/{ws}/Workers");
            let form =
                [("FriendlyName", name.as_str()), ("ActivitySid", activity), ("Attributes", attributes)];
            sid(&rest.post(&path, &form).await?)
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    made.into_iter().collect()
}

fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

fn token(server: &Server, ws: &str, wk: &str) -> Result<String, Error> {
    let grant = TaskRouterGrant {
        workspace_sid: Some(ws.into()),
        worker_sid: Some(wk.into()),
        role: Some("worker".into()),
    };
    Ok(AccessToken::new(&server.account, "SK00000000000000000000000000000b01", &server.auth_token)
        .ttl(Duration::from_secs(3600))
        .task_router_grant(grant)
        .to_jwt(unix_now())?)
}

/// What a channel's reader reports: the task's `bench` number and when its `reservation.created` arrived.
type Arrival = (usize, Instant);

/// Opens each worker's channel, waits for its `init`, and leaves a task reading it (and reporting
/// `reservation.created` frames to `arrivals`). Returns the readers, which close their socket when aborted.
async fn connect(
    server: &Server,
    ws: &str,
    workers: &[String],
    arrivals: Option<mpsc::UnboundedSender<Arrival>>,
) -> Result<Vec<tokio::task::JoinHandle<()>>, Error> {
    let ws_base = server.base.replacen("http", "ws", 1);
    let urls = workers
        .iter()
        .map(|wk| {
            let t = token(server, ws, wk)?;
            Ok(format!("{ws_base}/v1/wschannels?token={t}&closeExistingSessions=false&clientVersion=bench"))
        })
        .collect::<Result<Vec<_>, Error>>()?;
    let opened: Vec<Result<tokio::task::JoinHandle<()>, Error>> = stream::iter(urls)
        .map(|url| {
            let arrivals = arrivals.clone();
            async move {
                let config = WebSocketConfig::default().read_buffer_size(4096).write_buffer_size(0);
                let (mut socket, _) =
                    tokio_tungstenite::connect_async_with_config(url, Some(config), false).await?;
                match socket.next().await {
                    Some(Ok(Message::Text(t))) if t.contains(r#""init""#) => {}
                    other => return Err(format!("expected init, got {other:?}").into()),
                }
                Ok(tokio::spawn(async move {
                    while let Some(Ok(message)) = socket.next().await {
                        let Message::Text(text) = message else { continue };
                        let Some(arrivals) = &arrivals else { continue };
                        if !text.contains("reservation.created") {
                            continue;
                        }
                        let at = Instant::now();
                        if let Some(n) = bench_number(&text) {
                            let _ = arrivals.send((n, at));
                        }
                    }
                    let _ = socket.close(None).await;
                }))
            }
        })
        .buffer_unordered(CONCURRENCY)
        .collect()
        .await;
    opened.into_iter().collect()
}

/// The `bench` attribute of a `reservation.created` frame's task.
fn bench_number(frame: &str) -> Option<usize> {
    let v: Value = serde_json::from_str(frame).ok()?;
    if v["event_type"] != "reservation.created" {
        return None;
    }
    let attributes: Value = serde_json::from_str(v["payload"]["task"]["attributes"].as_str()?).ok()?;
    attributes["bench"].as_u64().map(|n| n as usize)
}

fn kib(n: u64) -> String {
    format!("{n} KiB ({:.1} MiB)", n as f64 / 1024.0)
}

async fn memory(server: &Server, rest: &Rest, ws: &Workspace, n: usize) -> Result<(), Error> {
    println!("\n== memory: {n} connected v2 channels");
    let started = Instant::now();
    let wks = workers(rest, &ws.sid, &ws.offline, "idle", n).await?;
    println!("created {n} workers in {:.1} s", started.elapsed().as_secs_f64());
    let before = server.rss_kib()?;
    let started = Instant::now();
    let readers = connect(server, &ws.sid, &wks, None).await?;
    println!("opened {n} channels (each had its init) in {:.1} s", started.elapsed().as_secs_f64());
    let connected = server.rss_kib()?;
    tokio::time::sleep(AFTER_HEARTBEAT).await;
    let beaten = server.rss_kib()?;
    let per = |after: u64| after.saturating_sub(before) as f64 / n as f64;
    println!("server RSS before the channels:       {}", kib(before));
    println!(
        "server RSS with them, at once:         {}  -> {:.2} KiB per channel",
        kib(connected),
        per(connected)
    );
    println!(
        "server RSS with them, after a heartbeat: {}  -> {:.2} KiB per channel",
        kib(beaten),
        per(beaten)
    );
    for r in &readers {
        r.abort();
    }
    Ok(())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[i]
}

fn summary(name: &str, mut d: Vec<Duration>) {
    if d.is_empty() {
        println!("{name}: no samples");
        return;
    }
    d.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{name}: n {}  p50 {:.3} ms  p90 {:.3} ms  p99 {:.3} ms  max {:.3} ms",
        d.len(),
        ms(percentile(&d, 0.50)),
        ms(percentile(&d, 0.90)),
        ms(percentile(&d, 0.99)),
        ms(d[d.len() - 1])
    );
}

async fn latency(
    server: &Server,
    rest: &Rest,
    ws: &Workspace,
    m: usize,
    tasks: usize,
    rate: u32,
) -> Result<(), Error> {
    println!("\n== latency: {m} connected channels, {tasks} tasks at {rate}/s");
    let wks = workers(rest, &ws.sid, &ws.available, "busy", m).await?;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let readers = connect(server, &ws.sid, &wks, Some(tx)).await?;
    println!("opened {m} channels; server RSS {}", kib(server.rss_kib()?));

    let workflow = rest.get(&format!("/v1/Workspaces/{}/Workflows", ws.sid)).await?;
    let workflow = sid(&workflow["workflows"][0])?;
    let sent: Arc<Vec<std::sync::OnceLock<Instant>>> =
        Arc::new((0..tasks).map(|_| Default::default()).collect());
    let (replies_tx, mut replies_rx) = mpsc::unbounded_channel();
    let load = || std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!("load average before the tasks: {}", load().trim());
    let sched_before = server.sched_ns()?;
    let mut pace = tokio::time::interval(Duration::from_secs(1) / rate);
    pace.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    for i in 0..tasks {
        pace.tick().await;
        let (rest, sent, replies, ws, workflow) =
            (rest.clone(), sent.clone(), replies_tx.clone(), ws.sid.clone(), workflow.clone());
        tokio::spawn(async move {
            let attributes = format!(r#"{{"bench":{i}}}"#);
            let form = [("WorkflowSid", workflow.as_str()), ("Attributes", attributes.as_str())];
            let path = format!("/v1/Workspaces/{ws}/Tasks");
            let start = Instant::now();
            let _ = sent[i].set(start);
            let result = rest.post(&path, &form).await;
            let _ = replies.send((i, result.map(|_| Instant::now()).map_err(|e| e.to_string())));
        });
    }
    drop(replies_tx);
    let mut frame_at: Vec<Option<Instant>> = vec![None; tasks];
    let mut received = 0;
    let deadline = tokio::time::Instant::now() + DRAIN;
    while received < tasks {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some((i, at))) => {
                if let Some(slot) = frame_at.get_mut(i).filter(|slot| slot.is_none()) {
                    *slot = Some(at);
                    received += 1;
                }
            }
            _ => break,
        }
    }
    let mut reply_at: Vec<Option<Instant>> = vec![None; tasks];
    while let Some((i, reply)) = replies_rx.recv().await {
        match reply {
            Ok(at) => reply_at[i] = Some(at),
            Err(e) => println!("a POST failed: {e}"),
        }
    }
    let (mut frames, mut replies, mut after_reply) = (Vec::new(), Vec::new(), Vec::new());
    let mut frame_first = 0;
    for i in 0..tasks {
        let Some(start) = sent[i].get() else { continue };
        if let Some(frame) = frame_at[i] {
            frames.push(frame.duration_since(*start));
        }
        if let Some(reply) = reply_at[i] {
            replies.push(reply.duration_since(*start));
        }
        if let (Some(frame), Some(reply)) = (frame_at[i], reply_at[i]) {
            match frame.checked_duration_since(reply) {
                Some(d) => after_reply.push(d),
                None => frame_first += 1,
            }
        }
    }
    let sched_after = server.sched_ns()?;
    println!("load average after the tasks: {}", load().trim());
    let per_task = |ns: u64| ns as f64 / 1000.0 / tasks.max(1) as f64;
    let (on_cpu, waiting) = (sched_after.0 - sched_before.0, sched_after.1 - sched_before.1);
    println!(
        "server threads meanwhile: on a CPU {:.1} ms ({:.0} us per task), runnable but waiting for a CPU {:.1} ms \
         ({:.0} us per task)",
        on_cpu as f64 / 1e6,
        per_task(on_cpu),
        waiting as f64 / 1e6,
        per_task(waiting)
    );
    println!("frames received: {received} of {tasks}");
    summary("task POST -> reservation.created frame", frames);
    summary("task POST -> its 201 reply            ", replies);
    summary("201 reply -> frame (frame later)      ", after_reply);
    println!("frames that came before their POST's reply: {frame_first}");
    for r in &readers {
        r.abort();
    }
    Ok(())
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let args = <Args as clap::Parser>::parse();
    let bin = args
        .bin
        .clone()
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/release/trworker"));
    // This client holds one descriptor per channel too.
    use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
    if let Some(max) = getrlimit(Resource::Nofile).maximum {
        let _ = setrlimit(Resource::Nofile, Rlimit { current: Some(max), maximum: Some(max) });
    }
    let data_dir = match &args.data_dir {
        Some(dir) => dir.clone(),
        None => std::env::temp_dir().join(format!("bridge-bench-{}", std::process::id())),
    };
    std::fs::create_dir_all(&data_dir)?;
    let server = Server::start(&bin, &data_dir)?;
    println!("trworker engine pid {} at {} (data {})", server.pid, server.base, data_dir.display());
    let rest = Rest {
        client: reqwest::Client::new(),
        base: server.base.clone(),
        account: server.account.clone(),
        auth_token: server.auth_token.clone(),
    };
    let ws = workspace(&rest).await?;
    println!("server RSS with the empty workspace: {}", kib(server.rss_kib()?));
    let result = async {
        if args.idle > 0 {
            memory(&server, &rest, &ws, args.idle).await?;
        }
        if args.channels > 0 {
            let tasks = args.tasks.unwrap_or(args.channels);
            latency(&server, &rest, &ws, args.channels, tasks, args.rate).await?;
        }
        Ok::<_, Error>(())
    }
    .await;
    drop(server);
    if args.data_dir.is_none() {
        let _ = std::fs::remove_dir_all(&data_dir);
    }
    result
}
