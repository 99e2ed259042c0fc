//! `Local::start()`: an embedded engine (manual clock, so no timer fires on its own) served on port 0 with
//! its `local.env` written, a `twilio::Client` to arrange state, and `run()` to call the binary.

use std::path::PathBuf;

use serde_json::Value;
use trworker::embedded::Seed;

pub struct Local {
    pub dir: PathBuf,
    pub client: twilio::Client,
    pub auth_token: String,
    pub workspace_sid: String,
    _engine: crate::support::Engine,
}

/// What one run of the binary came to.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// The stdout as JSON, asserting success.
    pub fn json(&self) -> Value {
        assert_eq!(self.code, 0, "stdout: {}\nstderr: {}", self.stdout, self.stderr);
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.stdout))
    }

    /// The one-line error, asserting failure.
    pub fn error(&self) -> String {
        assert_ne!(self.code, 0, "expected a failure; stdout: {}", self.stdout);
        let line = self.stderr.trim().to_owned();
        assert_eq!(line.lines().count(), 1, "one line expected: {line}");
        line
    }
}

pub fn temp_dir() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("trworker-cli-{}", trworker::config::random_hex()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `trworker ARGS` with an empty environment in `dir` (so no `.env` and no Twilio variables leak in)
/// and `--data-dir dir/data`.
pub async fn run_in(dir: &std::path::Path, args: &[&str]) -> Run {
    let dir = dir.to_owned();
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_trworker"))
            .args(&args)
            .arg("--data-dir")
            .arg(dir.join("data"))
            .env_clear()
            .current_dir(&dir)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap();
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    })
    .await
    .unwrap()
}

impl Local {
    /// The demo workspace (charles, ada, grace, linus; support and sales queues; the support workflow).
    pub async fn demo() -> Local {
        Local::start(Seed::Demo).await
    }

    /// An engine with one new, empty workspace ("Empty": only its default activities).
    pub async fn empty() -> Local {
        let mut local = Local::start(Seed::None).await;
        let ws = local
            .client
            .create_workspace(&twilio::client::taskrouter::CreateWorkspace {
                friendly_name: "Empty".into(),
                ..Default::default()
            })
            .await
            .unwrap();
        local.workspace_sid = ws.sid.clone();
        local.client = local.client.with_workspace(&ws.sid);
        local.write_env(&[("WORKSPACE_SID", &ws.sid)]);
        local
    }

    async fn start(seed: Seed) -> Local {
        let dir = temp_dir();
        let engine = crate::support::start_engine(&dir.join("data"), seed).await;
        let auth_token = engine.auth_token.clone();
        let workspace_sid = engine.workspace_sid.clone();
        let client = engine.client().with_workspace(&workspace_sid);
        Local { dir, client, auth_token, workspace_sid, _engine: engine }
    }

    /// Rewrites `local.env` with some values replaced.
    pub fn write_env(&self, replace: &[(&str, &str)]) {
        let path = self.dir.join("data").join("local.env");
        let mut values = trworker::config::read_env_file(&path).unwrap();
        for (k, v) in replace {
            values.insert((*k).to_owned(), (*v).to_owned());
        }
        let entries: Vec<(&str, &str)> = values.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        trworker::config::write_env_file(&path, &entries).unwrap();
    }

    /// `trworker ARGS --data-dir DIR/data` against this engine.
    pub async fn run(&self, args: &[&str]) -> Run {
        run_in(&self.dir, args).await
    }

    /// Moves the worker to the activity with this name.
    pub async fn set_activity(&self, worker: &str, activity: &str) {
        let activities = self.client.list_activities(&Default::default()).all().await.unwrap();
        let activity = activities.iter().find(|a| a.friendly_name.as_deref() == Some(activity)).unwrap();
        let sid = self.worker_sid(worker).await;
        let update = twilio::client::taskrouter::UpdateWorker {
            activity_sid: Some(activity.sid.clone()),
            ..Default::default()
        };
        self.client.update_worker(&sid, &update).await.unwrap();
    }

    pub async fn worker_sid(&self, name: &str) -> String {
        let workers = self.client.list_workers(&Default::default()).all().await.unwrap();
        workers.into_iter().find(|w| w.friendly_name.as_deref() == Some(name)).unwrap().sid
    }

    /// Moves `worker` to Available and places a call with the CLI, which reserves them: its `--json` report.
    pub async fn call_for(&self, worker: &str, from: &str) -> Value {
        self.set_activity(worker, "Available").await;
        self.call(from).await
    }

    /// Places a call with the CLI and returns its `--json` report.
    pub async fn call(&self, from: &str) -> Value {
        self.run(&["call", "--from", from, "--to", "+15550100", "--json"]).await.json()
    }

    /// Accepts the task's first reservation with the conference instruction, as the worker app does.
    pub async fn conference(&self, task_sid: &str) {
        let reservations =
            self.client.list_task_reservations(task_sid, &Default::default()).all().await.unwrap();
        let reservation = &reservations.first().expect("a reservation").sid;
        let update = twilio::client::taskrouter::UpdateReservation {
            instruction: Some(twilio::client::taskrouter::Instruction::Conference(
                twilio::client::taskrouter::ConferenceInstruction {
                    from: Some("+15550100".into()),
                    ..Default::default()
                },
            )),
            ..Default::default()
        };
        self.client.update_task_reservation(task_sid, reservation, &update).await.unwrap();
    }
}

impl Drop for Local {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
