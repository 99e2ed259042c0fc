//! `trworker setup`: create or check the seed's workspace configuration (its README's "Configure your
//! TaskRouter WorkSpace" step): the Offline/Available/Unavailable activities, Unavailable as the timeout
//! activity, the `support` queue (`skills HAS "support"`, one reserved worker at a time), the `support`
//! workflow (10 s reservation timeout, everything to `support`), a worker, and the event callback URL.
//!
//! Idempotent: what exists and matches is reported as found, what is missing is created, what can be
//! changed in place is changed. The client has no update operations for queues and workflows, so a queue
//! or workflow that differs is reported as `differs` (with what differs) and the command fails, rather than
//! silently leaving the workspace half right. `--dry-run` only reads.

use clap::Args;
use serde::Serialize;
use twilio::client::taskrouter::{
    ActivityFilter, CreateActivity, CreateTaskQueue, CreateWorker, CreateWorkflow, TaskQueueFilter,
    UpdateWorkspace, WorkerFilter, WorkflowFilter,
};

use super::output::{Style, Table};
use super::{Error, OpsArgs, Settings};

/// The queue's worker expression.
pub const SUPPORT_EXPRESSION: &str = r#"skills HAS "support""#;
/// The workflow's reservation timeout, in seconds.
pub const RESERVATION_TIMEOUT: u32 = 10;

/// `trworker setup`.
#[derive(Debug, Clone, Args)]
pub struct SetupArgs {
    /// Where TaskRouter should POST workspace events (e.g. https://your-app/twilio/events). Optional: the
    /// worker app takes its events from the event bridge; set it only to also receive the webhook.
    #[arg(long, env = "TRWORKER_CALLBACK_URL")]
    pub callback_url: Option<String>,
    /// The worker to create when it does not exist.
    #[arg(long, default_value = "charles")]
    pub worker: String,
    /// Report what would be done, change nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub ops: OpsArgs,
}

/// The state of one item after setup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Existed as required.
    Found,
    /// Was missing and was created.
    Created,
    /// Existed and was corrected.
    Changed,
    /// Missing; `--dry-run` did not create it.
    WouldCreate,
    /// Wrong; `--dry-run` did not correct it.
    WouldChange,
    /// Wrong and cannot be corrected by this command.
    Differs,
}

/// One line of the setup report.
#[derive(Debug, Serialize)]
pub struct Item {
    /// activity, workspace, task_queue, workflow, worker, event_callback_url.
    pub kind: &'static str,
    /// The item's name.
    pub name: String,
    /// Its SID, when it exists.
    pub sid: Option<String>,
    /// What setup found or did.
    pub state: State,
    /// What differs or was changed.
    pub detail: Option<String>,
}

/// The setup report.
#[derive(Debug, Serialize)]
pub struct Report {
    /// The workspace.
    pub workspace_sid: String,
    /// Whether nothing was changed on purpose.
    pub dry_run: bool,
    /// Every item, in the order handled.
    pub items: Vec<Item>,
}

struct Run {
    dry_run: bool,
    items: Vec<Item>,
}

impl Run {
    fn push(
        &mut self,
        kind: &'static str,
        name: &str,
        sid: Option<String>,
        state: State,
        detail: Option<String>,
    ) {
        self.items.push(Item { kind, name: name.to_owned(), sid, state, detail });
    }

    /// An item found: `Found`, or `Differs` with what is `wrong` with it.
    fn found(&mut self, kind: &'static str, name: &str, sid: &str, wrong: Vec<String>) {
        let state = if wrong.is_empty() { State::Found } else { State::Differs };
        let detail = (!wrong.is_empty()).then(|| wrong.join("; "));
        self.push(kind, name, Some(sid.to_owned()), state, detail);
    }

    /// `Created` or, in a dry run, `WouldCreate`.
    fn creating(&self) -> State {
        if self.dry_run {
            State::WouldCreate
        } else {
            State::Created
        }
    }
}

/// Runs `trworker setup`.
pub async fn run(args: SetupArgs) -> anyhow::Result<()> {
    let settings = Settings::resolve(&args.ops)?;
    let report = setup(&settings, &args).await?;
    let out = settings.out;
    if out.json {
        out.json(&report)?;
    } else {
        let mut table = Table::new(&["KIND", "NAME", "STATE", "SID", "DETAIL"]);
        for item in &report.items {
            let style = match item.state {
                State::Found => Style::Plain,
                State::Created | State::Changed => Style::Green,
                State::WouldCreate | State::WouldChange => Style::Yellow,
                State::Differs => Style::Red,
            };
            let state = serde_json::to_value(item.state)
                .ok()
                .and_then(|v| v.as_str().map(|s| s.replace('_', " ")))
                .unwrap_or_default();
            table.styled(vec![
                (item.kind.replace('_', " "), Style::Plain),
                (item.name.clone(), Style::Plain),
                (state, style),
                (item.sid.clone().unwrap_or_else(|| "-".into()), Style::Dim),
                (item.detail.clone().unwrap_or_default(), Style::Plain),
            ]);
        }
        println!(
            "Workspace {}{}",
            report.workspace_sid,
            if report.dry_run { " (dry run: nothing changed)" } else { "" }
        );
        out.table(&table);
    }
    let differing: Vec<&str> =
        report.items.iter().filter(|i| i.state == State::Differs).map(|i| i.name.as_str()).collect();
    if differing.is_empty() {
        Ok(())
    } else {
        Err(Error::Usage(format!(
            "{} differ from the seed's setup and cannot be changed by this command ({}): fix them in the \
             Twilio console or delete them and run `trworker setup` again",
            differing.len(),
            differing.join(", ")
        ))
        .into())
    }
}

async fn setup(settings: &Settings, args: &SetupArgs) -> Result<Report, Error> {
    let client = &settings.client;
    let mut run = Run { dry_run: args.dry_run, items: Vec::new() };

    // Activities.
    let activities =
        settings.all("listing activities", client.list_activities(&ActivityFilter::default())).await?;
    let mut unavailable_sid = None;
    for (name, available) in [("Offline", false), ("Available", true), ("Unavailable", false)] {
        let sid = match activities.iter().find(|a| a.friendly_name.as_deref() == Some(name)) {
            Some(a) if a.available.unwrap_or(false) != available => {
                let detail =
                    format!("available is {}, should be {available} (fixed at creation)", !available);
                run.push("activity", name, Some(a.sid.clone()), State::Differs, Some(detail));
                Some(a.sid.clone())
            }
            Some(a) => {
                run.push("activity", name, Some(a.sid.clone()), State::Found, None);
                Some(a.sid.clone())
            }
            None if args.dry_run => {
                run.push("activity", name, None, State::WouldCreate, None);
                None
            }
            None => {
                let params = CreateActivity { friendly_name: name.into(), available: Some(available) };
                let a = client
                    .create_activity(&params)
                    .await
                    .map_err(|e| settings.fail(format!("creating activity {name}"), e))?;
                run.push("activity", name, Some(a.sid.clone()), State::Created, None);
                Some(a.sid)
            }
        };
        if name == "Unavailable" {
            unavailable_sid = sid;
        }
    }

    // The workspace: timeout activity and event callback URL.
    let workspace = client.fetch_workspace().await.map_err(|e| {
        settings.fail_on(format!("workspace {}", settings.workspace_sid), e, "; check WORKSPACE_SID")
    })?;
    let mut update = UpdateWorkspace::default();
    let timeout_ok = unavailable_sid.is_some() && workspace.timeout_activity_sid == unavailable_sid;
    if timeout_ok {
        run.push(
            "workspace",
            "timeout activity",
            unavailable_sid.clone(),
            State::Found,
            Some("Unavailable".into()),
        );
    } else {
        let was = workspace.timeout_activity_name.clone().unwrap_or_else(|| "none".into());
        update.timeout_activity_sid = unavailable_sid.clone();
        let state = if args.dry_run { State::WouldChange } else { State::Changed };
        run.push(
            "workspace",
            "timeout activity",
            unavailable_sid.clone(),
            state,
            Some(format!("{was} -> Unavailable")),
        );
    }
    let current = workspace.event_callback_url.clone().filter(|u| !u.is_empty());
    match (&args.callback_url, &current) {
        (Some(wanted), Some(now)) if wanted == now => {
            run.push("event_callback_url", wanted, None, State::Found, None);
        }
        (Some(wanted), _) => {
            update.event_callback_url = Some(wanted.clone());
            let state = if args.dry_run { State::WouldChange } else { State::Changed };
            let was = current.clone().unwrap_or_else(|| "not set".into());
            run.push("event_callback_url", wanted, None, state, Some(format!("was {was}")));
        }
        (None, Some(now)) => run.push("event_callback_url", now, None, State::Found, None),
        (None, None) => run.push(
            "event_callback_url",
            "not set",
            None,
            State::Found,
            Some(
                "not needed: the worker app hears of events on the event bridge; --callback-url URL sets one"
                    .into(),
            ),
        ),
    }
    if !args.dry_run && (update.timeout_activity_sid.is_some() || update.event_callback_url.is_some()) {
        client.update_workspace(&update).await.map_err(|e| settings.fail("updating the workspace", e))?;
    }

    // The support queue.
    let filter = TaskQueueFilter { friendly_name: Some("support".into()), ..Default::default() };
    let queues = settings.all("listing task queues", client.list_task_queues(&filter)).await?;
    let queue_sid = match queues.iter().find(|q| q.friendly_name.as_deref() == Some("support")) {
        Some(q) => {
            let mut wrong = Vec::new();
            if q.target_workers.as_deref().map(str::trim) != Some(SUPPORT_EXPRESSION) {
                wrong.push(format!(
                    "target workers {:?}, should be {SUPPORT_EXPRESSION:?}",
                    q.target_workers.as_deref().unwrap_or("")
                ));
            }
            if q.max_reserved_workers != 1 {
                wrong.push(format!("max reserved workers {}, should be 1", q.max_reserved_workers));
            }
            run.found("task_queue", "support", &q.sid, wrong);
            Some(q.sid.clone())
        }
        None if args.dry_run => {
            run.push("task_queue", "support", None, State::WouldCreate, None);
            None
        }
        None => {
            let params = CreateTaskQueue {
                friendly_name: "support".into(),
                target_workers: Some(SUPPORT_EXPRESSION.into()),
                max_reserved_workers: Some(1),
                ..Default::default()
            };
            let q = client
                .create_task_queue(&params)
                .await
                .map_err(|e| settings.fail("creating the support queue", e))?;
            run.push("task_queue", "support", Some(q.sid.clone()), run.creating(), None);
            Some(q.sid)
        }
    };

    // The support workflow.
    let filter = WorkflowFilter { friendly_name: Some("support".into()), ..Default::default() };
    let workflows = settings.all("listing workflows", client.list_workflows(&filter)).await?;
    match workflows.iter().find(|w| w.friendly_name.as_deref() == Some("support")) {
        Some(w) => {
            let mut wrong = Vec::new();
            if w.task_reservation_timeout != RESERVATION_TIMEOUT {
                wrong.push(format!(
                    "reservation timeout {} s, should be {RESERVATION_TIMEOUT} s",
                    w.task_reservation_timeout
                ));
            }
            let config = w.configuration_json().unwrap_or_default();
            let default_queue = config["task_routing"]["default_filter"]["queue"].as_str().map(str::to_owned);
            if queue_sid.is_some() && default_queue != queue_sid {
                wrong.push("the default filter does not route to the support queue".into());
            }
            run.found("workflow", "support", &w.sid, wrong);
        }
        None => match (&queue_sid, args.dry_run) {
            (Some(queue), false) => {
                let params = CreateWorkflow {
                    friendly_name: "support".into(),
                    configuration: serde_json::json!({
                        "task_routing": { "filters": [], "default_filter": { "queue": queue } }
                    }),
                    task_reservation_timeout: Some(RESERVATION_TIMEOUT),
                    ..Default::default()
                };
                let w = client
                    .create_workflow(&params)
                    .await
                    .map_err(|e| settings.fail("creating the support workflow", e))?;
                run.push("workflow", "support", Some(w.sid), State::Created, None);
            }
            _ => run.push("workflow", "support", None, State::WouldCreate, None),
        },
    }

    // A worker.
    let name = args.worker.as_str();
    let filter = WorkerFilter { friendly_name: Some(name.into()), ..Default::default() };
    let workers = settings.all("listing workers", client.list_workers(&filter)).await?;
    match workers.iter().find(|w| w.friendly_name.as_deref() == Some(name)) {
        Some(w) => {
            let attributes = w.attributes_json().unwrap_or_default();
            let has_support = attributes["skills"]
                .as_array()
                .is_some_and(|skills| skills.iter().any(|s| s.as_str() == Some("support")));
            let mut wrong = Vec::new();
            if !has_support {
                wrong.push("its skills do not include \"support\": the queue will not reach it".to_owned());
            }
            run.found("worker", name, &w.sid, wrong);
        }
        None if args.dry_run => run.push("worker", name, None, State::WouldCreate, None),
        None => {
            let params = CreateWorker {
                friendly_name: name.into(),
                activity_sid: None,
                attributes: Some(serde_json::json!({
                    "skills": ["support"], "contact_uri": format!("client:{name}")
                })),
            };
            let w = client
                .create_worker(&params)
                .await
                .map_err(|e| settings.fail(format!("creating worker {name}"), e))?;
            run.push("worker", name, Some(w.sid), State::Created, None);
        }
    }

    Ok(Report { workspace_sid: settings.workspace_sid.clone(), dry_run: args.dry_run, items: run.items })
}
