//! TaskRouter's real-time statistics: the workspace's and a task queue's figures now (reference: the
//! `RealTimeStatistics` resources). Every field defaults when absent, so a figure Twilio adds or leaves out
//! never fails a read.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{segment, Client};
use crate::error::Error;

/// Workers in one activity.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ActivityStatistic {
    /// The activity (`WA…`).
    pub sid: String,
    /// Its name.
    pub friendly_name: String,
    /// Workers in it now.
    pub workers: u64,
}

/// `GET /v1/Workspaces/{WS}/RealTimeStatistics`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct WorkspaceRealTimeStatistics {
    /// Workers per activity.
    pub activity_statistics: Vec<ActivityStatistic>,
    /// Age in seconds of the oldest task waiting (pending or reserved).
    pub longest_task_waiting_age: u64,
    /// Tasks per assignment status.
    pub tasks_by_status: BTreeMap<String, u64>,
    /// Tasks in the workspace.
    pub total_tasks: u64,
    /// Workers in the workspace.
    pub total_workers: u64,
}

/// `GET /v1/Workspaces/{WS}/TaskQueues/{WQ}/RealTimeStatistics`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TaskQueueRealTimeStatistics {
    /// The queue (`WQ…`).
    pub task_queue_sid: String,
    /// The queue's workers per activity.
    pub activity_statistics: Vec<ActivityStatistic>,
    /// Age in seconds of the queue's oldest task waiting.
    pub longest_task_waiting_age: u64,
    /// The queue's tasks per assignment status.
    pub tasks_by_status: BTreeMap<String, u64>,
    /// Tasks in the queue.
    pub total_tasks: u64,
    /// The queue's workers in an available activity.
    pub total_available_workers: u64,
    /// Workers the queue's expression selects.
    pub total_eligible_workers: u64,
}

impl Client {
    /// `GET …/RealTimeStatistics`: the workspace's figures now.
    pub async fn fetch_workspace_real_time_statistics(&self) -> Result<WorkspaceRealTimeStatistics, Error> {
        self.get(self.workspace_url("/RealTimeStatistics")?).await
    }

    /// `GET …/TaskQueues/{WQ}/RealTimeStatistics`: one queue's figures now.
    pub async fn fetch_task_queue_real_time_statistics(
        &self,
        task_queue_sid: &str,
    ) -> Result<TaskQueueRealTimeStatistics, Error> {
        let url =
            self.workspace_url(&format!("/TaskQueues/{}/RealTimeStatistics", segment(task_queue_sid)))?;
        self.get(url).await
    }
}
