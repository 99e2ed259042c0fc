//! `Proc`: the real `trworker` binary run as a server in a directory of its own, with an empty environment
//! plus what the test gives it, its stdout and stderr collected line by line, stopped with a real SIGTERM.

use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

/// How long a server may take to start or stop before the test fails.
const PATIENCE: Duration = Duration::from_secs(60);

/// A directory under the system's temporary directory, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(what: &str) -> TempDir {
        let dir =
            std::env::temp_dir().join(format!("trworker-deploy-{what}-{}", trworker::config::random_hex()));
        std::fs::create_dir_all(&dir).expect("create a temporary directory");
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running server process.
pub struct Proc {
    child: Option<Child>,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<Vec<String>>>,
    readers: Vec<std::thread::JoinHandle<()>>,
}

/// What a stopped server left behind.
#[derive(Debug)]
pub struct Exit {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

fn collect(
    stream: impl std::io::Read + Send + 'static,
    lines: Arc<Mutex<Vec<String>>>,
    found: std::sync::mpsc::Sender<String>,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stream).lines() {
            let Ok(line) = line else { return };
            // Only the start-up line: with debug logs, other lines name other loopback addresses (the
            // app's own engine listener).
            let announces = line.contains("started") || line.contains(" at http://127.0.0.1:");
            if let Some(url) = base_url_in(&line).filter(|_| announces) {
                let _ = found.send(url);
            }
            lines.lock().expect("lines").push(line);
        }
    })
}

/// The first `http://127.0.0.1:PORT` in a line (the text banner and the JSON `started` line both have it).
fn base_url_in(line: &str) -> Option<String> {
    let start = line.find("http://127.0.0.1:")?;
    let rest = &line[start + "http://127.0.0.1:".len()..];
    let port: String = rest.chars().take_while(char::is_ascii_digit).collect();
    (!port.is_empty()).then(|| format!("http://127.0.0.1:{port}"))
}

impl Proc {
    /// Starts `trworker ARGS --port 0 --data-dir DIR/data` in `dir` with only `env` set, and waits until it
    /// says where it listens.
    pub fn start(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Proc {
        let mut command = Command::new(env!("CARGO_BIN_EXE_trworker"));
        command
            .args(args)
            .args(["--port", "0", "--data-dir"])
            .arg(dir.join("data"))
            .env_clear()
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("start trworker");
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let (found, url) = std::sync::mpsc::channel();
        let readers = vec![
            collect(child.stdout.take().expect("stdout"), stdout.clone(), found.clone()),
            collect(child.stderr.take().expect("stderr"), stderr.clone(), found),
        ];
        let base = match url.recv_timeout(PATIENCE) {
            Ok(base) => base,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "trworker did not start.\nstdout: {:?}\nstderr: {:?}",
                    stdout.lock().expect("lines"),
                    stderr.lock().expect("lines")
                );
            }
        };
        Proc { child: Some(child), base, stdout, stderr, readers }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Starts `trworker ARGS` with `env` in a fresh directory named after `what`: the directory and the
    /// process (bind them in that order, so that the process ends before its directory goes).
    pub fn start_in(what: &str, args: &[&str], env: &[(&str, &str)]) -> (TempDir, Proc) {
        let dir = TempDir::new(what);
        let proc = Proc::start(&dir.0, args, env);
        (dir, proc)
    }

    /// Sends SIGTERM and waits for the process to end.
    pub fn terminate(mut self) -> Exit {
        let mut child = self.child.take().expect("running");
        let status =
            Command::new("kill").args(["-TERM", &child.id().to_string()]).status().expect("run kill");
        assert!(status.success(), "kill -TERM failed");
        let (done, exited) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = done.send(child.wait());
        });
        let status = exited.recv_timeout(PATIENCE).expect("trworker stopped after SIGTERM").expect("wait");
        // The readers reach end-of-file once the process is gone: then every line is in.
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        let lines = |l: &Arc<Mutex<Vec<String>>>| l.lock().expect("lines").join("\n");
        Exit { code: status.code(), stdout: lines(&self.stdout), stderr: lines(&self.stderr) }
    }

    /// Sends SIGTERM and checks that trworker exits with 0, as a clean stop does.
    pub fn stop_cleanly(self) -> Exit {
        let exit = self.terminate();
        assert_eq!(exit.code, Some(0), "{exit:?}");
        exit
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `GET url`: status and body text.
pub async fn get(url: &str) -> (u16, String) {
    let response = reqwest::get(url).await.unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = response.status().as_u16();
    (status, response.text().await.unwrap_or_default())
}

/// `GET url` as JSON.
pub async fn get_json(url: &str) -> (u16, Value) {
    let (status, text) = get(url).await;
    (status, serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}")))
}

/// The value of the sample `name{labels}` (exact label text, or empty for none) on a `/metrics` page.
pub fn sample(page: &str, name: &str, labels: &str) -> Option<f64> {
    let key = if labels.is_empty() { format!("{name} ") } else { format!("{name}{{{labels}}} ") };
    page.lines().find_map(|line| line.strip_prefix(key.as_str())).and_then(|v| v.trim().parse().ok())
}

/// Scrapes `/metrics` until `check` holds (events and callbacks are asynchronous), or fails after 20 s.
pub async fn metrics_until(proc: &Proc, what: &str, check: impl Fn(&str) -> bool) -> String {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let (status, page) = get(&proc.url("/metrics")).await;
        assert_eq!(status, 200);
        if check(&page) {
            return page;
        }
        assert!(tokio::time::Instant::now() < deadline, "metrics never showed {what}:\n{page}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The settings a local server wrote for the CLI.
pub fn local_env(dir: &Path) -> std::collections::BTreeMap<String, String> {
    trworker::config::read_env_file(&dir.join("data").join("local.env")).expect("local.env")
}

/// An administrator's client of a local server's engine, from its `local.env`.
pub fn admin(dir: &Path) -> twilio::Client {
    let env = local_env(dir);
    let config = twilio::Config::new(&env["ACCOUNT_SID"], &env["AUTH_TOKEN"])
        .workspace(&env["WORKSPACE_SID"])
        .base_urls(&env["TWILIO_TASKROUTER_URL"], &env["TWILIO_API_URL"]);
    twilio::Client::new(config).expect("client")
}

/// Signs a worker in through the app; returns its token.
pub async fn sign_in(proc: &Proc, identity: &str, password: &str) -> String {
    let response = reqwest::Client::new()
        .post(proc.url("/api/token"))
        .json(&serde_json::json!({ "identity": identity, "password": password }))
        .send()
        .await
        .expect("sign in");
    assert_eq!(response.status().as_u16(), 200);
    let body: Value = response.json().await.expect("token JSON");
    body["token"].as_str().expect("token").to_owned()
}

pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Opens the worker WebSocket, says hello and waits for the first state.
pub async fn socket(proc: &Proc, token: &str) -> Socket {
    use futures_util::{SinkExt as _, StreamExt as _};
    use tokio_tungstenite::tungstenite::Message;
    let url = format!("{}/api/ws", proc.base.replacen("http", "ws", 1));
    let (mut stream, _) = tokio_tungstenite::connect_async(url).await.expect("connect");
    let hello = serde_json::json!({ "type": "hello", "token": token });
    stream.send(Message::Text(hello.to_string().into())).await.expect("hello");
    loop {
        let message = tokio::time::timeout(Duration::from_secs(20), stream.next()).await.expect("a state");
        if let Some(Ok(Message::Text(text))) = message {
            let value: Value = serde_json::from_str(text.as_str()).expect("JSON");
            if value["type"] == "state" {
                return stream;
            }
        } else {
            panic!("the socket ended before its first state: {message:?}");
        }
    }
}

/// The demo workspace's activity with this name.
pub async fn activity_sid(client: &twilio::Client, name: &str) -> String {
    let activities = client.list_activities(&Default::default()).all().await.expect("activities");
    activities.into_iter().find(|a| a.friendly_name.as_deref() == Some(name)).expect("activity").sid
}

/// The demo worker with this name.
pub async fn worker_sid(client: &twilio::Client, name: &str) -> String {
    let workers = client.list_workers(&Default::default()).all().await.expect("workers");
    workers.into_iter().find(|w| w.friendly_name.as_deref() == Some(name)).expect("worker").sid
}

/// Creates a task on the demo workspace's first workflow.
pub async fn create_task(client: &twilio::Client) -> twilio::models::Task {
    let workflows = client.list_workflows(&Default::default()).all().await.expect("workflows");
    let workflow = workflows.first().expect("a workflow").sid.clone();
    let params = twilio::client::taskrouter::CreateTask {
        attributes: Some(serde_json::json!({ "from": "+15551230001" })),
        workflow_sid: Some(workflow),
        ..Default::default()
    };
    client.create_task(&params).await.expect("create task")
}
