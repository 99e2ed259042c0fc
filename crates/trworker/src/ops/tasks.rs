//! `trworker tasks …`: list tasks with their reservations and conference (taskReservationList), complete tasks
//! stuck in wrapping (taskReservationListFix / taskReservationTaskFix), delete every task (taskDeleteAll).

use std::io::{BufRead as _, IsTerminal as _, Write as _};

use clap::{Args, Subcommand};
use serde::Serialize;
use twilio::client::taskrouter::{TaskFilter, UpdateTask};
use twilio::models::{Reservation, Task, TaskAssignmentStatus};

use super::output::{Progress, Style, Table};
use super::{human_duration, Error, OpsArgs, Settings};

/// The reason written on tasks completed by `fix-wrapping`, as the seed's programs wrote it.
pub const FIX_REASON: &str = "Was stuck in wrapping";

/// `trworker tasks`.
#[derive(Debug, Clone, Args)]
pub struct TasksArgs {
    /// What to do with the tasks.
    #[command(subcommand)]
    pub action: TasksAction,
    #[command(flatten)]
    pub ops: OpsArgs,
}

/// The `tasks` subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum TasksAction {
    /// Every task with status, age, caller, queue and conference, and its reservations.
    List,
    /// Complete tasks stuck in wrapping (all of them, or the one given).
    FixWrapping {
        /// Only this task (`WT…`).
        task_sid: Option<String>,
    },
    /// Delete every task of the workspace (asks first unless --yes).
    DeleteAll {
        /// Do not ask for confirmation.
        #[arg(long, short = 'y')]
        yes: bool,
    },
}

/// A reservation as `--json` prints it (`tasks list`, and the one `call` was offered).
#[derive(Debug, Serialize)]
pub struct ReservationRow {
    /// `WR…`.
    pub sid: String,
    /// pending, accepted, wrapping, …
    pub status: String,
    /// `WK…`.
    pub worker_sid: Option<String>,
    /// The worker's friendly name.
    pub worker_name: Option<String>,
}

impl From<Reservation> for ReservationRow {
    fn from(r: Reservation) -> ReservationRow {
        ReservationRow {
            status: r.reservation_status.map(|s| s.to_string()).unwrap_or_default(),
            worker_sid: r.worker_sid,
            worker_name: r.worker_name,
            sid: r.sid,
        }
    }
}

/// A task as `tasks list --json` prints it.
#[derive(Debug, Serialize)]
pub struct TaskRow {
    /// `WT…`.
    pub sid: String,
    /// pending, reserved, assigned, wrapping, completed, canceled.
    pub status: String,
    /// Seconds since the task was created.
    pub age: u64,
    /// The caller (`from` attribute).
    pub from: Option<String>,
    /// The queue's name.
    pub queue: Option<String>,
    /// The conference's SID (`conference.sid` attribute).
    pub conference_sid: Option<String>,
    /// The caller's leg in it (`conference.participants.customer`).
    pub customer_call_sid: Option<String>,
    /// Whether the task is stuck-prone wrapping.
    pub wrapping: bool,
    /// Its reservations.
    pub reservations: Vec<ReservationRow>,
}

/// What `fix-wrapping` did to one task.
#[derive(Debug, Serialize)]
pub struct FixRow {
    /// `WT…`.
    pub sid: String,
    /// The status found.
    pub status_before: String,
    /// The status now.
    pub status: String,
    /// Whether this command completed it.
    pub changed: bool,
}

/// Runs `trworker tasks …`.
pub async fn run(args: TasksArgs) -> anyhow::Result<()> {
    let settings = Settings::resolve(&args.ops)?;
    match args.action {
        TasksAction::List => list(&settings).await,
        TasksAction::FixWrapping { task_sid } => fix_wrapping(&settings, task_sid).await,
        TasksAction::DeleteAll { yes } => delete_all(&settings, yes).await,
    }
}

/// The task's assignment status, `""` when the server gave none.
pub(crate) fn status(task: &Task) -> String {
    task.assignment_status.as_ref().map(|s| s.to_string()).unwrap_or_default()
}

async fn all_tasks(settings: &Settings, filter: &TaskFilter) -> Result<Vec<Task>, Error> {
    settings.all("listing tasks", settings.client.list_tasks(filter)).await
}

/// Moves task `task_sid` to `status` (completed, canceled) with `reason`; `doing` ("completing") starts the
/// error message.
pub(crate) async fn close(
    settings: &Settings,
    task_sid: &str,
    status: TaskAssignmentStatus,
    reason: &str,
    doing: &str,
) -> Result<Task, Error> {
    let update =
        UpdateTask { assignment_status: Some(status), reason: Some(reason.to_owned()), ..Default::default() };
    settings
        .client
        .update_task(task_sid, &update)
        .await
        .map_err(|e| settings.fail(format!("{doing} task {task_sid}"), e))
}

/// The reservations of task `task_sid`.
pub(crate) async fn reservations(settings: &Settings, task_sid: &str) -> Result<Vec<Reservation>, Error> {
    let listing = settings.client.list_task_reservations(task_sid, &Default::default());
    settings.all(format!("listing the reservations of task {task_sid}"), listing).await
}

async fn list(settings: &Settings) -> anyhow::Result<()> {
    let tasks = all_tasks(settings, &TaskFilter::default()).await?;
    let mut rows = Vec::with_capacity(tasks.len());
    let mut progress = Progress::new("reading reservations", tasks.len());
    for task in tasks {
        let reservations = reservations(settings, &task.sid).await?;
        progress.step();
        let attributes = task.attributes_json().unwrap_or_default();
        let text = |v: &serde_json::Value| v.as_str().map(str::to_owned);
        rows.push(TaskRow {
            status: status(&task),
            age: task.age,
            from: text(&attributes["from"]),
            queue: task.task_queue_friendly_name.clone(),
            conference_sid: text(&attributes["conference"]["sid"]),
            customer_call_sid: text(&attributes["conference"]["participants"]["customer"]),
            wrapping: task.assignment_status == Some(TaskAssignmentStatus::Wrapping),
            reservations: reservations.into_iter().map(ReservationRow::from).collect(),
            sid: task.sid,
        });
    }
    drop(progress);
    if settings.printed_json_or_none("tasks", &rows)? {
        return Ok(());
    }
    let out = settings.out;
    let mut table = Table::new(&["TASK", "STATUS", "AGE", "CALLER", "QUEUE", "CONFERENCE", "CUSTOMER LEG"]);
    let dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    for row in &rows {
        let style = match row.status.as_str() {
            "wrapping" => Style::Red,
            "pending" | "reserved" => Style::Yellow,
            "assigned" => Style::Green,
            _ => Style::Dim,
        };
        let status = if row.wrapping { format!("{} (!)", row.status) } else { row.status.clone() };
        table.styled(vec![
            (row.sid.clone(), Style::Plain),
            (status, style),
            (human_duration(row.age), Style::Plain),
            (dash(&row.from), Style::Plain),
            (dash(&row.queue), Style::Plain),
            (dash(&row.conference_sid), Style::Plain),
            (dash(&row.customer_call_sid), Style::Plain),
        ]);
        for r in &row.reservations {
            let worker = r.worker_name.clone().or_else(|| r.worker_sid.clone()).unwrap_or_default();
            table.styled(vec![
                (format!("  {}", r.sid), Style::Dim),
                (r.status.clone(), Style::Dim),
                (String::new(), Style::Plain),
                (format!("worker {worker}"), Style::Dim),
            ]);
        }
    }
    out.table(&table);
    if rows.iter().any(|r| r.wrapping) {
        println!("(!) wrapping: `trworker tasks fix-wrapping` completes these tasks.");
    }
    Ok(())
}

async fn fix_wrapping(settings: &Settings, task_sid: Option<String>) -> anyhow::Result<()> {
    let tasks = match &task_sid {
        Some(sid) => vec![settings.client.fetch_task(sid).await.map_err(|e| {
            settings.fail_on(format!("task {sid}"), e, "; `trworker tasks list` shows the tasks")
        })?],
        None => {
            let filter =
                TaskFilter { assignment_status: vec![TaskAssignmentStatus::Wrapping], ..Default::default() };
            all_tasks(settings, &filter).await?
        }
    };
    let mut rows = Vec::with_capacity(tasks.len());
    let mut progress = Progress::new("completing wrapping tasks", tasks.len());
    for task in tasks {
        let before = status(&task);
        let row = if task.assignment_status == Some(TaskAssignmentStatus::Wrapping) {
            let done =
                close(settings, &task.sid, TaskAssignmentStatus::Completed, FIX_REASON, "completing").await?;
            FixRow { status: status(&done), sid: done.sid, status_before: before, changed: true }
        } else {
            FixRow { status: before.clone(), sid: task.sid, status_before: before, changed: false }
        };
        progress.step();
        rows.push(row);
    }
    drop(progress);
    let out = settings.out;
    if out.json {
        return out.json(&serde_json::json!({ "tasks": rows }));
    }
    if rows.is_empty() {
        println!("No task is wrapping: nothing to fix.");
    }
    for row in &rows {
        if row.changed {
            println!("{} {} (was {})", out.paint("completed", Style::Green), row.sid, row.status_before);
        } else {
            println!("{} is {}, not wrapping: left as it is", row.sid, row.status);
        }
    }
    Ok(())
}

/// Asks `question [y/N]` on stderr and reads the answer from stdin.
fn confirm(question: &str) -> Result<bool, Error> {
    let mut err = std::io::stderr();
    let _ = write!(err, "{question} [y/N] ");
    let _ = err.flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| Error::Usage(format!("cannot read the answer: {e}; pass --yes to skip the question")))?;
    Ok(matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes"))
}

async fn delete_all(settings: &Settings, yes: bool) -> anyhow::Result<()> {
    let tasks = all_tasks(settings, &TaskFilter::default()).await?;
    let out = settings.out;
    if tasks.is_empty() {
        if out.json {
            return out.json(&serde_json::json!({ "deleted": [], "failed": [] }));
        }
        println!("No tasks in workspace {}: nothing to delete.", settings.workspace_sid);
        return Ok(());
    }
    if !yes {
        if !std::io::stdin().is_terminal() {
            return Err(Error::Usage(format!(
                "refusing to delete {} task(s) without confirmation: stdin is not a terminal; pass --yes",
                tasks.len()
            ))
            .into());
        }
        let question = format!("Delete all {} task(s) of workspace {}?", tasks.len(), settings.workspace_sid);
        if !confirm(&question)? {
            return Err(Error::Usage("nothing deleted: not confirmed".into()).into());
        }
    }
    let mut deleted = Vec::new();
    let mut failed = Vec::new();
    let mut progress = Progress::new("deleting tasks", tasks.len());
    for task in &tasks {
        match settings.client.delete_task(&task.sid, None).await {
            // Gone already (completed and removed meanwhile): the goal is reached.
            Ok(()) => deleted.push(task.sid.clone()),
            Err(e) if e.is_not_found() => deleted.push(task.sid.clone()),
            Err(e) => {
                let e = settings.fail(format!("deleting task {}", task.sid), e);
                if matches!(e, Error::Unreachable { .. } | Error::Unauthorized { .. }) {
                    return Err(e.into());
                }
                failed.push(serde_json::json!({ "sid": task.sid, "error": e.to_string() }));
            }
        }
        progress.step();
    }
    drop(progress);
    if out.json {
        out.json(&serde_json::json!({ "deleted": deleted, "failed": failed }))?;
    } else {
        for sid in &deleted {
            println!("{} {sid}", out.paint("deleted", Style::Green));
        }
        for f in &failed {
            println!("{} {}", out.paint("failed", Style::Red), f["error"].as_str().unwrap_or_default());
        }
    }
    if failed.is_empty() {
        Ok(())
    } else {
        Err(Error::Usage(format!("{} of {} task(s) could not be deleted", failed.len(), tasks.len())).into())
    }
}
