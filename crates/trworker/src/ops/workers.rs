//! `trworker workers`: every worker with its activity and how long it has been in it (the seed's
//! workerStatus.js).

use clap::Args;
use serde::Serialize;

use super::output::{Style, Table};
use super::{human_duration, parse_iso, unix_now, OpsArgs, Settings};

/// `trworker workers`.
#[derive(Debug, Clone, Args)]
pub struct WorkersArgs {
    #[command(flatten)]
    pub ops: OpsArgs,
}

/// One worker as `--json` prints it.
#[derive(Debug, Serialize)]
pub struct WorkerRow {
    /// `WK…`.
    pub sid: String,
    /// The identity the worker logs in with.
    pub friendly_name: String,
    /// Its activity's name.
    pub activity: String,
    /// Whether that activity takes tasks.
    pub available: bool,
    /// When the activity last changed (ISO-8601), if the server says.
    pub date_status_changed: Option<String>,
    /// Seconds since then, by this machine's clock.
    pub seconds_in_activity: Option<u64>,
}

/// Lists the workers.
pub async fn run(args: WorkersArgs) -> anyhow::Result<()> {
    let settings = &Settings::resolve(&args.ops)?;
    let workers = settings.all("listing workers", settings.client.list_workers(&Default::default())).await?;
    let now = unix_now();
    let mut rows: Vec<WorkerRow> = workers
        .into_iter()
        .map(|w| {
            let seconds_in_activity = w
                .date_status_changed
                .as_deref()
                .and_then(parse_iso)
                .map(|t| u64::try_from(now.saturating_sub(t)).unwrap_or(0));
            WorkerRow {
                friendly_name: w.friendly_name.unwrap_or_default(),
                activity: w.activity_name.unwrap_or_default(),
                available: w.available.unwrap_or(false),
                date_status_changed: w.date_status_changed,
                seconds_in_activity,
                sid: w.sid,
            }
        })
        .collect();
    rows.sort_by(|a, b| a.friendly_name.cmp(&b.friendly_name).then_with(|| a.sid.cmp(&b.sid)));
    if settings.printed_json_or_none("workers", &rows)? {
        return Ok(());
    }
    let out = settings.out;
    let mut table = Table::new(&["WORKER", "ACTIVITY", "TIME IN IT", "SID"]);
    for row in &rows {
        let style = match (row.available, row.activity.as_str()) {
            (true, _) => Style::Green,
            (false, "Offline") => Style::Dim,
            (false, _) => Style::Yellow,
        };
        table.styled(vec![
            (row.friendly_name.clone(), Style::Plain),
            (row.activity.clone(), style),
            (row.seconds_in_activity.map(human_duration).unwrap_or_else(|| "-".into()), Style::Plain),
            (row.sid.clone(), Style::Dim),
        ]);
    }
    out.table(&table);
    Ok(())
}
