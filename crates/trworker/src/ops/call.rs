//! `trworker call`: place a simulated incoming call, i.e. create the voice task that Studio's Enqueue widget
//! would create, and `trworker call hangup` to simulate the caller hanging up. This is how a call enters a
//! local engine, which has no phone network; against real Twilio it creates a task with no call behind it.

use clap::{Args, Subcommand};
use serde::Serialize;
use twilio::client::taskrouter::CreateTask;
use twilio::models::TaskAssignmentStatus;

use super::output::Style;
use super::tasks::{self, ReservationRow};
use super::{conferences, Error, OpsArgs, Settings};

/// `trworker call`.
#[derive(Debug, Clone, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct CallArgs {
    /// `hangup`, or nothing to place a call.
    #[command(subcommand)]
    pub action: Option<CallAction>,
    /// The caller's number (the task's `from`).
    #[arg(long, required = true)]
    pub from: Option<String>,
    /// The number called (the task's `to`).
    #[arg(long)]
    pub to: Option<String>,
    /// More task attributes, a JSON object merged over the call's own.
    #[arg(long)]
    pub attributes: Option<String>,
    /// The workflow (`WW…`); default: the only workflow, or the one named "support".
    #[arg(long)]
    pub workflow: Option<String>,
    #[command(flatten)]
    pub ops: OpsArgs,
}

/// The `call` subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum CallAction {
    /// The caller hangs up: a waiting task is canceled, a conference is ended.
    Hangup {
        /// The call's task (`WT…`).
        task_sid: String,
    },
}

/// The reason written on a task canceled by `call hangup`.
pub const HANGUP_REASON: &str = "Caller hung up";

/// Runs `trworker call …`.
pub async fn run(args: CallArgs) -> anyhow::Result<()> {
    let settings = Settings::resolve(&args.ops)?;
    match &args.action {
        Some(CallAction::Hangup { task_sid }) => hangup(&settings, task_sid).await,
        None => place(&settings, &args).await,
    }
}

/// What `call` prints with `--json`.
#[derive(Debug, Serialize)]
pub struct Placed {
    /// `WT…`.
    pub task_sid: String,
    /// The simulated call (`CA…`).
    pub call_sid: String,
    /// The task's status.
    pub status: String,
    /// `WW…`.
    pub workflow_sid: String,
    /// The queue the workflow chose.
    pub queue: Option<String>,
    /// The first reservation, if one was made at once.
    pub reservation: Option<ReservationRow>,
}

/// The task attributes of an inbound call, as Studio's Enqueue widget sets them, with `extra` merged over.
pub fn call_attributes(
    account_sid: &str,
    call_sid: &str,
    from: &str,
    to: Option<&str>,
    extra: Option<&str>,
) -> Result<serde_json::Value, Error> {
    let mut attributes = serde_json::json!({
        "from": from,
        "caller": from,
        "call_sid": call_sid,
        "account_sid": account_sid,
        "direction": "inbound",
        "type": "inbound",
    });
    if let (Some(to), Some(object)) = (to, attributes.as_object_mut()) {
        object.insert("to".into(), to.into());
        object.insert("called".into(), to.into());
    }
    if let Some(extra) = extra {
        let extra: serde_json::Value = serde_json::from_str(extra).map_err(|e| {
            Error::Usage(format!(
                "--attributes is not JSON ({e}); give an object like '{{\"selected_product\":\"sales\"}}'"
            ))
        })?;
        let serde_json::Value::Object(extra) = extra else {
            return Err(Error::Usage("--attributes must be a JSON object, like '{\"k\":\"v\"}'".into()));
        };
        if let Some(object) = attributes.as_object_mut() {
            object.extend(extra);
        }
    }
    Ok(attributes)
}

async fn choose_workflow(settings: &Settings, given: Option<&str>) -> Result<String, Error> {
    if let Some(sid) = given {
        return Ok(sid.to_owned());
    }
    let workflows =
        settings.all("listing workflows", settings.client.list_workflows(&Default::default())).await?;
    if let [only] = workflows.as_slice() {
        return Ok(only.sid.clone());
    }
    if let Some(support) = workflows.iter().find(|w| w.friendly_name.as_deref() == Some("support")) {
        return Ok(support.sid.clone());
    }
    Err(Error::Usage(if workflows.is_empty() {
        format!("workspace {} has no workflow: run `trworker setup` first", settings.workspace_sid)
    } else {
        format!(
            "workspace {} has {} workflows and none is named support: pass --workflow WW…",
            settings.workspace_sid,
            workflows.len()
        )
    }))
}

async fn place(settings: &Settings, args: &CallArgs) -> anyhow::Result<()> {
    let from = args.from.as_deref().ok_or_else(|| Error::Usage("--from NUMBER is required".into()))?;
    let workflow_sid = choose_workflow(settings, args.workflow.as_deref()).await?;
    let call_sid = format!("CA{}", crate::config::random_hex());
    let account_sid = settings.client.config().account_sid.clone();
    let attributes =
        call_attributes(&account_sid, &call_sid, from, args.to.as_deref(), args.attributes.as_deref())?;
    let task = settings
        .client
        .create_task(&CreateTask {
            attributes: Some(attributes),
            workflow_sid: Some(workflow_sid.clone()),
            task_channel: Some("voice".into()),
            ..Default::default()
        })
        .await
        .map_err(|e| {
            settings.fail_on(format!("creating the call's task (workflow {workflow_sid})"), e, "")
        })?;
    let reservation =
        tasks::reservations(settings, &task.sid).await?.into_iter().next().map(ReservationRow::from);
    let status = tasks::status(&task);
    let status = match (&reservation, status.as_str()) {
        (Some(_), "pending") => "reserved".to_owned(),
        _ => status,
    };
    let placed = Placed {
        task_sid: task.sid,
        call_sid,
        status,
        workflow_sid,
        queue: task.task_queue_friendly_name,
        reservation,
    };
    let out = settings.out;
    if out.json {
        return out.json(&placed);
    }
    println!("task        {}", placed.task_sid);
    println!("call        {} from {from}", placed.call_sid);
    println!("queue       {}", placed.queue.as_deref().unwrap_or("-"));
    match &placed.reservation {
        Some(r) => println!(
            "reservation {} {} for {}",
            r.sid,
            out.paint(&r.status, Style::Yellow),
            r.worker_name.as_deref().or(r.worker_sid.as_deref()).unwrap_or("?")
        ),
        None => println!("reservation none yet: no available worker matches ({})", placed.status),
    }
    Ok(())
}

/// What `call hangup` did.
#[derive(Debug, Serialize)]
pub struct HungUp {
    /// `WT…`.
    pub task_sid: String,
    /// `canceled_task`, `ended_conference` or `none`.
    pub action: &'static str,
    /// The conference ended, when there was one.
    pub conference_sid: Option<String>,
    /// The task's status afterwards.
    pub status: String,
}

async fn hangup(settings: &Settings, task_sid: &str) -> anyhow::Result<()> {
    let task = settings.client.fetch_task(task_sid).await.map_err(|e| {
        settings.fail_on(format!("task {task_sid}"), e, "; `trworker tasks list` shows the tasks")
    })?;
    let attributes = task.attributes_json().unwrap_or_default();
    let conference = attributes["conference"]["sid"].as_str().map(str::to_owned);
    let status = task.assignment_status.clone();
    let result = match (status, conference) {
        (Some(TaskAssignmentStatus::Pending | TaskAssignmentStatus::Reserved), _) => {
            let task =
                tasks::close(settings, task_sid, TaskAssignmentStatus::Canceled, HANGUP_REASON, "canceling")
                    .await?;
            HungUp {
                task_sid: task.sid,
                action: "canceled_task",
                conference_sid: None,
                status: task.assignment_status.map(|s| s.to_string()).unwrap_or_default(),
            }
        }
        (_, Some(cf)) => {
            let ended = conferences::end(settings, &cf).await?;
            let task = settings
                .client
                .fetch_task(task_sid)
                .await
                .map_err(|e| settings.fail(format!("reading task {task_sid}"), e))?;
            HungUp {
                task_sid: task.sid,
                action: if ended.already_ended { "none" } else { "ended_conference" },
                conference_sid: Some(ended.sid),
                status: task.assignment_status.map(|s| s.to_string()).unwrap_or_default(),
            }
        }
        (Some(TaskAssignmentStatus::Assigned), None) => {
            return Err(Error::Usage(format!(
                "task {task_sid} is assigned but has no conference: there is no call to hang up; \
                 complete the task instead"
            ))
            .into())
        }
        (status, None) => HungUp {
            task_sid: task.sid,
            action: "none",
            conference_sid: None,
            status: status.map(|s| s.to_string()).unwrap_or_default(),
        },
    };
    let out = settings.out;
    if out.json {
        return out.json(&result);
    }
    match result.action {
        "canceled_task" => println!(
            "{} task {} (\"{HANGUP_REASON}\"): it was waiting for a worker",
            out.paint("canceled", Style::Yellow),
            result.task_sid
        ),
        "ended_conference" => println!(
            "{} conference {} of task {} (task now {})",
            out.paint("ended", Style::Yellow),
            result.conference_sid.as_deref().unwrap_or_default(),
            result.task_sid,
            result.status
        ),
        _ => {
            println!("Task {} is {}: the call is already over, nothing done.", result.task_sid, result.status)
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_look_like_studio_enqueue_and_extras_win() {
        let a = call_attributes(
            "AC1",
            "CA1",
            "+1555",
            Some("+1666"),
            Some(r#"{"selected_product":"sales","type":"x"}"#),
        )
        .unwrap();
        assert_eq!(a["from"], "+1555");
        assert_eq!(a["to"], "+1666");
        assert_eq!(a["call_sid"], "CA1");
        assert_eq!(a["direction"], "inbound");
        assert_eq!(a["selected_product"], "sales");
        assert_eq!(a["type"], "x");
        assert!(call_attributes("AC1", "CA1", "+1", None, Some("[1]")).is_err());
        assert!(call_attributes("AC1", "CA1", "+1", None, Some("{")).is_err());
        assert!(call_attributes("AC1", "CA1", "+1", None, None).unwrap().get("to").is_none());
    }
}
