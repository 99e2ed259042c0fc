//! The resources the client returns, field for field as the TaskRouter v1 and API 2010 specs name them
//! (reference Appendix A).
//!
//! The spec marks almost every field nullable: those are `Option`s. The few it does not (a Task's `age`,
//! `priority` and `timeout`, a TaskQueue's `max_reserved_workers`, a Workflow's `task_reservation_timeout`)
//! are plain numbers that read as 0 when absent; the SID is required. Unknown fields are ignored, so a
//! server that adds fields does not break the client. Enums that Twilio may extend keep an
//! `Other(String)` arm carrying the unknown value, so a new status never fails a whole response.
//!
//! Timestamps stay strings: TaskRouter sends ISO-8601 (`2014-05-14T10:50:02Z`), API 2010 sends RFC 2822
//! (`Fri, 18 Feb 2011 19:26:50 +0000`); callers that need arithmetic parse them, everyone else displays them.
//! `attributes`, `configuration` and `addons` are JSON documents sent as strings; `*_json()` parses them.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

/// Related resources of a v1 resource, by name, as absolute URLs. Values are optional: a link whose target is
/// not set may come back as `null` (the local engine leaves such links out, but a client should not break).
pub type Links = BTreeMap<String, Option<String>>;

/// Whether `value` has the shape of a Twilio SID with `prefix` (`"WT"`, `"CF"`, ...): the two letters and 32
/// hexadecimal digits. For checking input before it goes into a URL, so a malformed SID is the caller's
/// error rather than a request Twilio refuses.
pub fn is_sid(prefix: &str, value: &str) -> bool {
    value.len() == 34
        && value.strip_prefix(prefix).is_some_and(|hex| hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Defines a string enum with an `Other(String)` arm: `as_str`, `Display`, and serde as the plain string.
macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(from = "String", into = "String")]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
            /// A value this client does not know yet, kept as sent.
            Other(String),
        }

        impl $name {
            /// The value as Twilio spells it.
            pub fn as_str(&self) -> &str {
                match self {
                    $(Self::$variant => $text,)+
                    Self::Other(other) => other,
                }
            }
        }

        impl From<String> for $name {
            fn from(value: String) -> Self {
                match value.as_str() {
                    $($text => Self::$variant,)+
                    _ => Self::Other(value),
                }
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                Self::from(value.to_owned())
            }
        }

        impl From<$name> for String {
            fn from(value: $name) -> Self {
                match value {
                    $name::Other(other) => other,
                    known => known.as_str().to_owned(),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

string_enum! {
    /// A Task's `assignment_status`.
    TaskAssignmentStatus {
        /// Waiting for a worker.
        Pending = "pending",
        /// Offered to one or more workers.
        Reserved = "reserved",
        /// Accepted by a worker.
        Assigned = "assigned",
        /// Canceled, or its TTL ran out.
        Canceled = "canceled",
        /// Done.
        Completed = "completed",
        /// The worker is wrapping up.
        Wrapping = "wrapping",
    }
}

string_enum! {
    /// A Reservation's `reservation_status`.
    ReservationStatus {
        /// Offered, waiting for the worker.
        Pending = "pending",
        /// The worker accepted.
        Accepted = "accepted",
        /// The worker rejected.
        Rejected = "rejected",
        /// The worker did not answer in time.
        Timeout = "timeout",
        /// The task was canceled.
        Canceled = "canceled",
        /// Another worker accepted the task first.
        Rescinded = "rescinded",
        /// The worker is wrapping up.
        Wrapping = "wrapping",
        /// Done.
        Completed = "completed",
    }
}

string_enum! {
    /// `task_order` of a TaskQueue and `prioritize_queue_order` of a Workspace.
    QueueOrder {
        /// Oldest first.
        Fifo = "FIFO",
        /// Newest first.
        Lifo = "LIFO",
    }
}

string_enum! {
    /// A Conference's `status`.
    ConferenceStatus {
        /// Created, not started.
        Init = "init",
        /// Started.
        InProgress = "in-progress",
        /// Ended.
        Completed = "completed",
    }
}

string_enum! {
    /// Why a Conference ended.
    ReasonConferenceEnded {
        /// `Status=completed` was posted.
        ConferenceEndedViaApi = "conference-ended-via-api",
        /// A participant with `end_conference_on_exit` hung up.
        ParticipantWithEndConferenceOnExitLeft = "participant-with-end-conference-on-exit-left",
        /// A participant with `end_conference_on_exit` was removed.
        ParticipantWithEndConferenceOnExitKicked = "participant-with-end-conference-on-exit-kicked",
        /// The last participant was removed.
        LastParticipantKicked = "last-participant-kicked",
        /// The last participant hung up.
        LastParticipantLeft = "last-participant-left",
    }
}

string_enum! {
    /// A conference Participant's `status`.
    ParticipantStatus {
        /// Not dialled yet.
        Queued = "queued",
        /// Dialling.
        Connecting = "connecting",
        /// Ringing.
        Ringing = "ringing",
        /// In the conference.
        Connected = "connected",
        /// Left.
        Complete = "complete",
        /// Could not be connected.
        Failed = "failed",
    }
}

/// Parses a JSON-in-a-string field; an absent field reads as `{}`.
fn parse_json_field(field: Option<&str>) -> Result<serde_json::Value, serde_json::Error> {
    serde_json::from_str(field.unwrap_or("{}"))
}

/// Defines a TaskRouter v1 resource: `sid` and `account_sid`, then the resource's own fields as listed,
/// then the four every v1 resource ends with (`date_created`, `date_updated`, `url`, `links`) and, for a
/// resource declared `with etag`, the `ETag` of its response (not a field of the body), set through
/// [`HasEtag`].
macro_rules! resource {
    (
        $(#[$meta:meta])*
        $name:ident $(with $etag:ident)? {
            $($(#[$field_meta:meta])* pub $field:ident: $ty:ty,)*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[allow(missing_docs)]
        pub struct $name {
            pub sid: String,
            pub account_sid: Option<String>,
            $($(#[$field_meta])* pub $field: $ty,)*
            pub date_created: Option<String>,
            pub date_updated: Option<String>,
            pub url: Option<String>,
            pub links: Option<Links>,
            $(
                /// The `ETag` response header of a single-resource response, for `If-Match`; `None` in lists.
                #[serde(skip)]
                pub $etag: Option<String>,
            )?
        }

        $(
            impl HasEtag for $name {
                fn set_etag(&mut self, etag: Option<String>) {
                    self.$etag = etag;
                }
            }
        )?
    };
}

resource! {
    /// A TaskRouter Workspace.
    Workspace {
        pub friendly_name: Option<String>,
        pub default_activity_sid: Option<String>,
        pub default_activity_name: Option<String>,
        pub timeout_activity_sid: Option<String>,
        pub timeout_activity_name: Option<String>,
        pub event_callback_url: Option<String>,
        /// Comma-separated event types, `None` when every event is sent.
        pub events_filter: Option<String>,
        pub multi_task_enabled: Option<bool>,
        pub prioritize_queue_order: Option<QueueOrder>,
    }
}

resource! {
    /// A worker state (Offline, Available, ...). `available` decides whether workers in it get reservations.
    Activity {
        pub workspace_sid: Option<String>,
        pub friendly_name: Option<String>,
        pub available: Option<bool>,
    }
}

resource! {
    /// A TaskRouter Worker.
    Worker with etag {
        pub workspace_sid: Option<String>,
        pub friendly_name: Option<String>,
        pub activity_sid: Option<String>,
        pub activity_name: Option<String>,
        pub available: Option<bool>,
        /// JSON document as a string; see [`Worker::attributes_json`]. The spec allows `null` in lists.
        pub attributes: Option<String>,
        pub date_status_changed: Option<String>,
    }
}

impl Worker {
    /// `attributes` parsed as JSON (`{}` when absent).
    pub fn attributes_json(&self) -> Result<serde_json::Value, serde_json::Error> {
        parse_json_field(self.attributes.as_deref())
    }
}

resource! {
    /// A Worker's capacity on one TaskChannel (`/Workers/{WK}/Channels/{WC}`), as the event bridge sends it
    /// with `worker.capacity.update` and `worker.channel.availability.update`.
    WorkerChannel {
        pub workspace_sid: Option<String>,
        pub worker_sid: Option<String>,
        pub task_channel_sid: Option<String>,
        pub task_channel_unique_name: Option<String>,
        /// How many tasks of this channel the worker may hold at once.
        pub configured_capacity: Option<u32>,
        pub assigned_tasks: Option<u32>,
        /// Whether the channel takes tasks at all.
        pub available: Option<bool>,
        /// The share of `configured_capacity` still free, 0 to 100.
        pub available_capacity_percentage: Option<u32>,
    }
}

resource! {
    /// A TaskRouter Task.
    Task with etag {
        pub workspace_sid: Option<String>,
        pub assignment_status: Option<TaskAssignmentStatus>,
        /// JSON document as a string; see [`Task::attributes_json`].
        pub attributes: Option<String>,
        /// JSON document as a string.
        pub addons: Option<String>,
        /// Seconds since the task was created.
        #[serde(default)]
        pub age: u64,
        #[serde(default)]
        pub priority: i64,
        /// Seconds the task may live.
        #[serde(default)]
        pub timeout: u64,
        /// Why the task was canceled or completed.
        pub reason: Option<String>,
        pub task_queue_sid: Option<String>,
        pub task_queue_friendly_name: Option<String>,
        pub task_queue_entered_date: Option<String>,
        pub workflow_sid: Option<String>,
        pub workflow_friendly_name: Option<String>,
        pub task_channel_sid: Option<String>,
        pub task_channel_unique_name: Option<String>,
        pub virtual_start_time: Option<String>,
        pub routing_target: Option<String>,
        pub ignore_capacity: Option<bool>,
    }
}

impl Task {
    /// `attributes` parsed as JSON (`{}` when absent).
    pub fn attributes_json(&self) -> Result<serde_json::Value, serde_json::Error> {
        parse_json_field(self.attributes.as_deref())
    }
}

resource! {
    /// A Reservation: a Task offered to a Worker. The task view and the worker view return the same shape.
    Reservation with etag {
        pub workspace_sid: Option<String>,
        pub task_sid: Option<String>,
        pub worker_sid: Option<String>,
        pub worker_name: Option<String>,
        pub reservation_status: Option<ReservationStatus>,
    }
}

resource! {
    /// A TaskQueue.
    TaskQueue {
        pub workspace_sid: Option<String>,
        pub friendly_name: Option<String>,
        /// Expression over worker attributes selecting the queue's workers.
        pub target_workers: Option<String>,
        #[serde(default)]
        pub max_reserved_workers: u32,
        pub task_order: Option<QueueOrder>,
        pub reservation_activity_sid: Option<String>,
        pub reservation_activity_name: Option<String>,
        pub assignment_activity_sid: Option<String>,
        pub assignment_activity_name: Option<String>,
    }
}

resource! {
    /// A Workflow.
    Workflow {
        pub workspace_sid: Option<String>,
        pub friendly_name: Option<String>,
        /// JSON document as a string; see [`Workflow::configuration_json`].
        pub configuration: Option<String>,
        pub assignment_callback_url: Option<String>,
        pub fallback_assignment_callback_url: Option<String>,
        /// Seconds a reservation waits for the worker.
        #[serde(default)]
        pub task_reservation_timeout: u32,
        pub document_content_type: Option<String>,
    }
}

impl Workflow {
    /// `configuration` parsed as JSON (`{}` when absent).
    pub fn configuration_json(&self) -> Result<serde_json::Value, serde_json::Error> {
        parse_json_field(self.configuration.as_deref())
    }
}

/// An entry of a Workspace's event log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct Event {
    pub sid: String,
    pub account_sid: Option<String>,
    pub workspace_sid: Option<String>,
    /// E.g. `reservation.created`, `worker.activity.update`.
    pub event_type: Option<String>,
    pub description: Option<String>,
    pub event_date: Option<String>,
    pub event_date_ms: Option<i64>,
    /// Event details, snake_case keys.
    pub event_data: Option<serde_json::Value>,
    pub resource_type: Option<String>,
    pub resource_sid: Option<String>,
    pub resource_url: Option<String>,
    pub actor_type: Option<String>,
    pub actor_sid: Option<String>,
    pub actor_url: Option<String>,
    pub source: Option<String>,
    pub source_ip_address: Option<String>,
    pub url: Option<String>,
}

/// An API 2010 Conference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct Conference {
    pub sid: String,
    pub account_sid: Option<String>,
    /// TaskRouter's conference instruction names the conference after the Task SID.
    pub friendly_name: Option<String>,
    pub status: Option<ConferenceStatus>,
    pub region: Option<String>,
    pub api_version: Option<String>,
    pub reason_conference_ended: Option<ReasonConferenceEnded>,
    pub call_sid_ending_conference: Option<String>,
    /// RFC 2822.
    pub date_created: Option<String>,
    /// RFC 2822.
    pub date_updated: Option<String>,
    /// Relative to the API base.
    pub uri: Option<String>,
    pub subresource_uris: Option<Links>,
}

/// A call leg in a Conference.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct Participant {
    pub call_sid: String,
    pub account_sid: Option<String>,
    pub conference_sid: Option<String>,
    pub label: Option<String>,
    pub status: Option<ParticipantStatus>,
    pub muted: Option<bool>,
    pub hold: Option<bool>,
    pub coaching: Option<bool>,
    pub call_sid_to_coach: Option<String>,
    pub start_conference_on_enter: Option<bool>,
    pub end_conference_on_exit: Option<bool>,
    pub queue_time: Option<String>,
    /// RFC 2822.
    pub date_created: Option<String>,
    /// RFC 2822.
    pub date_updated: Option<String>,
    /// Relative to the API base.
    pub uri: Option<String>,
}

/// An API 2010 API Key as fetch, list and update show it: never its secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct Key {
    /// `SK…`: the issuer (`iss`) of the AccessTokens it signs, and the Basic auth username it stands for.
    pub sid: String,
    pub friendly_name: Option<String>,
    /// RFC 2822.
    pub date_created: Option<String>,
    /// RFC 2822.
    pub date_updated: Option<String>,
}

/// An API 2010 API Key as its create answers it: the only time Twilio shows the secret, so the caller keeps
/// it. `Debug` does not print the secret.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[allow(missing_docs)]
pub struct NewKey {
    pub sid: String,
    pub friendly_name: Option<String>,
    /// Signs AccessTokens (HS256) and is the Basic auth password with `sid`.
    pub secret: String,
    /// RFC 2822.
    pub date_created: Option<String>,
    /// RFC 2822.
    pub date_updated: Option<String>,
}

impl fmt::Debug for NewKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewKey")
            .field("sid", &self.sid)
            .field("friendly_name", &self.friendly_name)
            .field("secret", &"<redacted>")
            .field("date_created", &self.date_created)
            .field("date_updated", &self.date_updated)
            .finish()
    }
}

/// Models that carry the `ETag` response header.
pub(crate) trait HasEtag {
    fn set_etag(&mut self, etag: Option<String>);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sid_shapes() {
        assert!(is_sid("WT", "WT0123456789abcdef0123456789ABCDEF"));
        assert!(!is_sid("WT", "WR0123456789abcdef0123456789abcdef"), "another kind");
        assert!(!is_sid("WT", "WT0123456789abcdef0123456789abcde"), "too short");
        assert!(!is_sid("WT", "WT0123456789abcdef0123456789abcdeg"), "not hex");
        assert!(!is_sid("WT", "WT0123456789abcdef0123456789abcdé"), "not ASCII");
    }

    #[test]
    fn enums_round_trip_known_and_unknown_values() -> Result<(), serde_json::Error> {
        let known: ReservationStatus = serde_json::from_str("\"rescinded\"")?;
        assert_eq!(known, ReservationStatus::Rescinded);
        let unknown: ReservationStatus = serde_json::from_str("\"paused\"")?;
        assert_eq!(unknown, ReservationStatus::Other("paused".to_owned()));
        assert_eq!(serde_json::to_string(&unknown)?, "\"paused\"");
        assert_eq!(serde_json::to_string(&ConferenceStatus::InProgress)?, "\"in-progress\"");
        assert_eq!(QueueOrder::from("LIFO"), QueueOrder::Lifo);
        assert_eq!(TaskAssignmentStatus::Wrapping.to_string(), "wrapping");
        Ok(())
    }

    #[test]
    fn task_from_spec_example_with_nulls_and_unknown_fields() -> Result<(), serde_json::Error> {
        let task: Task = serde_json::from_value(serde_json::json!({
            "sid": "WTaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            "assignment_status": "pending",
            "attributes": "{\"call_sid\": \"CA1\"}",
            "age": 25200,
            "priority": 1,
            "reason": null,
            "routing_target": null,
            "links": {"workspace": "https://taskrouter.twilio.com/v1/Workspaces/WS1"},
            "a_field_from_the_future": 1,
        }))?;
        assert_eq!(task.assignment_status, Some(TaskAssignmentStatus::Pending));
        assert_eq!(task.reason, None);
        assert_eq!((task.age, task.priority, task.timeout), (25200, 1, 0));
        assert_eq!(task.attributes_json()?["call_sid"], "CA1");
        assert_eq!(task.etag, None);
        Ok(())
    }

    #[test]
    fn null_links_do_not_fail_a_resource() -> Result<(), serde_json::Error> {
        let queue: TaskQueue = serde_json::from_value(serde_json::json!({
            "sid": "WQ1",
            "links": {"assignment_activity": null, "workspace": "https://taskrouter.twilio.com/v1/Workspaces/WS1"},
        }))?;
        let links = queue.links.unwrap_or_default();
        assert_eq!(links.get("assignment_activity"), Some(&None));
        assert!(links.get("workspace").is_some_and(Option::is_some));
        Ok(())
    }
}
