//! `trworker conferences …`: list conferences in progress (conferenceListInProgress) and end one by SID or by
//! name (conferenceEndFn). TaskRouter names a task's conference after the task SID, so the name is usually
//! a `WT…`.

use clap::{Args, Subcommand};
use serde::Serialize;
use twilio::client::conference::ConferenceFilter;
use twilio::models::{Conference, ConferenceStatus};

use super::output::{Style, Table};
use super::{Error, OpsArgs, Settings};

/// `trworker conferences`.
#[derive(Debug, Clone, Args)]
pub struct ConferencesArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: ConferencesAction,
    #[command(flatten)]
    pub ops: OpsArgs,
}

/// The `conferences` subcommands.
#[derive(Debug, Clone, Subcommand)]
pub enum ConferencesAction {
    /// Conferences in progress (every conference with --all).
    List {
        /// Also conferences that have not started or have ended.
        #[arg(long)]
        all: bool,
    },
    /// End a conference, disconnecting every participant.
    End {
        /// The conference SID (`CF…`) or its friendly name (TaskRouter uses the task SID).
        sid_or_name: String,
    },
}

/// A conference as `--json` prints it.
#[derive(Debug, Serialize)]
pub struct ConferenceRow {
    /// `CF…`.
    pub sid: String,
    /// Its name (the task SID for TaskRouter conferences).
    pub friendly_name: Option<String>,
    /// init, in-progress, completed.
    pub status: String,
    /// RFC 2822.
    pub date_created: Option<String>,
    /// RFC 2822.
    pub date_updated: Option<String>,
    /// Why it ended, once it has.
    pub reason_conference_ended: Option<String>,
}

impl From<Conference> for ConferenceRow {
    fn from(c: Conference) -> Self {
        ConferenceRow {
            sid: c.sid,
            friendly_name: c.friendly_name,
            status: c.status.map(|s| s.to_string()).unwrap_or_default(),
            date_created: c.date_created,
            date_updated: c.date_updated,
            reason_conference_ended: c.reason_conference_ended.map(|r| r.to_string()),
        }
    }
}

/// Runs `trworker conferences …`.
pub async fn run(args: ConferencesArgs) -> anyhow::Result<()> {
    let settings = Settings::resolve(&args.ops)?;
    match args.action {
        ConferencesAction::List { all } => list(&settings, all).await,
        ConferencesAction::End { sid_or_name } => {
            let ended = end(&settings, &sid_or_name).await?;
            let out = settings.out;
            if out.json {
                return out.json(&ended);
            }
            if ended.already_ended {
                println!("Conference {} had already ended.", ended.sid);
            } else {
                println!("{} conference {}", out.paint("ended", Style::Green), ended.sid);
            }
            Ok(())
        }
    }
}

async fn list(settings: &Settings, all: bool) -> anyhow::Result<()> {
    let filter =
        ConferenceFilter { status: (!all).then_some(ConferenceStatus::InProgress), ..Default::default() };
    let conferences = settings.all("listing conferences", settings.client.list_conferences(&filter)).await?;
    let rows: Vec<ConferenceRow> = conferences.into_iter().map(ConferenceRow::from).collect();
    let out = settings.out;
    if out.json {
        return out.json(&serde_json::json!({ "conferences": rows }));
    }
    if rows.is_empty() {
        println!("{}", if all { "No conferences." } else { "No conferences in progress." });
        return Ok(());
    }
    let mut table = Table::new(&["CONFERENCE", "NAME", "STATUS", "CREATED"]);
    for row in &rows {
        let style = if row.status == "in-progress" { Style::Green } else { Style::Dim };
        table.styled(vec![
            (row.sid.clone(), Style::Plain),
            (row.friendly_name.clone().unwrap_or_default(), Style::Plain),
            (row.status.clone(), style),
            (row.date_created.clone().unwrap_or_default(), Style::Dim),
        ]);
    }
    out.table(&table);
    Ok(())
}

/// What `conferences end` (and `call hangup`) did.
#[derive(Debug, Serialize)]
pub struct Ended {
    /// `CF…`.
    pub sid: String,
    /// Its name.
    pub friendly_name: Option<String>,
    /// Its status now.
    pub status: String,
    /// True when it had ended before this command.
    pub already_ended: bool,
}

/// Ends the conference named by SID or friendly name; a conference that already ended is reported, not
/// ended twice.
pub async fn end(settings: &Settings, sid_or_name: &str) -> Result<Ended, Error> {
    let hint = "; `trworker conferences list --all` shows the conferences";
    let conference = if twilio::models::is_sid("CF", sid_or_name) {
        settings
            .client
            .fetch_conference(sid_or_name)
            .await
            .map_err(|e| settings.fail_on(format!("conference {sid_or_name}"), e, hint))?
    } else {
        let filter = ConferenceFilter { friendly_name: Some(sid_or_name.to_owned()), ..Default::default() };
        let found = settings
            .all(format!("looking up conference {sid_or_name}"), settings.client.list_conferences(&filter))
            .await?;
        let (mut open, closed): (Vec<Conference>, Vec<Conference>) =
            found.into_iter().partition(|c| c.status != Some(ConferenceStatus::Completed));
        if open.len() > 1 {
            return Err(Error::Usage(format!(
                "{} conferences named {sid_or_name} are open: give the SID (CF…) of the one to end{hint}",
                open.len()
            )));
        }
        match open.pop().or_else(|| closed.into_iter().next()) {
            Some(conference) => conference,
            None => {
                return Err(Error::Usage(format!(
                    "no conference named {sid_or_name}{hint}; give its SID (CF…) or name"
                )))
            }
        }
    };
    if conference.status == Some(ConferenceStatus::Completed) {
        return Ok(Ended {
            sid: conference.sid,
            friendly_name: conference.friendly_name,
            status: "completed".into(),
            already_ended: true,
        });
    }
    let ended = settings
        .client
        .end_conference(&conference.sid)
        .await
        .map_err(|e| settings.fail(format!("ending conference {}", conference.sid), e))?;
    Ok(Ended {
        status: ended.status.map(|s| s.to_string()).unwrap_or_default(),
        sid: ended.sid,
        friendly_name: ended.friendly_name,
        already_ended: false,
    })
}
