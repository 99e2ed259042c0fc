//! Leaving the desk: a worker who signs out, or whose last tab has been closed for longer than a grace
//! period, is moved to the leave activity (Offline by default), so that TaskRouter stops routing calls to
//! a desk nobody sits at.
//!
//! - Sign-out (`POST /api/token/sign-out`) moves the worker at once, whatever its activity.
//! - A closed tab is noticed when the worker's last socket closes ([`Departure`]); a reconciliation round
//!   after the grace ([`sweep`]) moves the worker if no socket came back meanwhile and the worker is still
//!   in an available activity. A worker on a break (an unavailable activity) is left where they chose to
//!   be. The check rides on the reconciliation rounds (every 30 s by default), so the move comes between
//!   the grace and the grace plus one round after the tab closed: a reload or a short network loss, which
//!   reconnects within seconds, never moves anyone.

use std::sync::Arc;

use twilio::client::taskrouter::UpdateWorker;

use super::{snapshot, AppError, AppState};

/// Records, when dropped, that a worker's socket closed, if it was the worker's last one. Created before
/// the socket subscribes, so it is dropped after the socket's receiver.
pub(crate) struct Departure {
    state: AppState,
    worker_sid: Arc<str>,
}

impl Departure {
    /// A socket of `worker_sid` opened: whatever departure was noted is void.
    pub(crate) fn arrive(state: &AppState, worker_sid: &str) -> Departure {
        if let Ok(mut departed) = state.inner.departed.lock() {
            departed.remove(worker_sid);
        }
        super::channels::active(state, worker_sid);
        Departure { state: state.clone(), worker_sid: worker_sid.into() }
    }
}

impl Drop for Departure {
    fn drop(&mut self) {
        let hub = &self.state.inner.hub;
        if !hub.has_tabs(&self.worker_sid) {
            let now = self.state.now();
            if let Ok(mut departed) = self.state.inner.departed.lock() {
                departed.insert(self.worker_sid.to_string(), now);
            }
            super::channels::idle(&self.state, &self.worker_sid, now);
        }
    }
}

/// Moves `worker_sid` to the leave activity, and closes its event channel: nobody is at the desk to see
/// events (a sign-in or a new tab opens it again). `Ok(None)` when the workspace has no such activity.
pub(crate) async fn leave(state: &AppState, worker_sid: &str) -> Result<Option<String>, AppError> {
    super::channels::close(state, worker_sid);
    let name = &state.config().leave_activity;
    let workspace = snapshot::workspace(state).await?;
    let Some(activity) = workspace.activity_named(name) else {
        tracing::warn!(activity = %name, "the leave activity does not exist in the workspace");
        return Ok(None);
    };
    let update = UpdateWorker { activity_sid: Some(activity.sid.clone()), ..Default::default() };
    state
        .client()
        .update_worker(worker_sid, &update)
        .await
        .map_err(|e| AppError::upstream("move the worker to the leave activity", e))?;
    Ok(Some(activity.friendly_name.clone()))
}

/// One round: workers whose last socket closed more than the grace ago, with no socket since, and who are
/// still available, are moved to the leave activity.
pub(crate) async fn sweep(state: &AppState) {
    let Some(grace) = state.config().leave_grace else { return };
    let now = state.now();
    let due: Vec<String> = match state.inner.departed.lock() {
        Ok(mut departed) => {
            let cutoff = now.plus_millis(-i64::try_from(grace.as_millis()).unwrap_or(i64::MAX));
            let due: Vec<String> =
                departed.iter().filter(|(_, at)| **at <= cutoff).map(|(w, _)| w.clone()).collect();
            for worker in &due {
                departed.remove(worker);
            }
            due
        }
        Err(_) => return,
    };
    for worker_sid in due {
        if state.inner.hub.has_tabs(&worker_sid) {
            continue;
        }
        match state.client().fetch_worker(&worker_sid).await {
            Ok(worker) if worker.available == Some(true) => match leave(state, &worker_sid).await {
                Ok(Some(activity)) => {
                    tracing::info!(%worker_sid, %activity, "the worker's page has been closed past the grace; moved")
                }
                Ok(None) => {}
                Err(error) => tracing::warn!(%worker_sid, %error, "could not move a worker who left"),
            },
            Ok(_) => {}
            Err(error) => tracing::debug!(%worker_sid, %error, "could not read a worker who left"),
        }
    }
}
