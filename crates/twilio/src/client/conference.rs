//! API 2010 Conference and Participant operations (`/2010-04-01/Accounts/{AC}/Conferences….json`), the
//! part of Programmable Voice that TaskRouter's conference instruction creates and the app ends.

use super::{segment, Client, Form, Paged};
use crate::error::Error;
use crate::models::{Conference, ConferenceStatus, Participant};

/// Filters of the conference list. Dates are `YYYY-MM-DD`.
#[derive(Debug, Clone, Default)]
#[allow(missing_docs)]
pub struct ConferenceFilter {
    pub status: Option<ConferenceStatus>,
    /// TaskRouter names a task's conference after the task SID.
    pub friendly_name: Option<String>,
    pub date_created: Option<String>,
    /// Created on or before (`DateCreated<`).
    pub date_created_before: Option<String>,
    /// Created on or after (`DateCreated>`).
    pub date_created_after: Option<String>,
    pub date_updated: Option<String>,
    pub page_size: Option<u32>,
}

/// Parameters of a conference update.
#[derive(Debug, Clone, Default)]
#[allow(missing_docs)]
pub struct UpdateConference {
    /// Only `completed` is allowed: it ends the conference and drops every participant.
    pub status: Option<ConferenceStatus>,
    pub announce_url: Option<String>,
    pub announce_method: Option<String>,
}

/// Filters of the participant list.
#[derive(Debug, Clone, Default)]
#[allow(missing_docs)]
pub struct ParticipantFilter {
    pub muted: Option<bool>,
    pub hold: Option<bool>,
    pub coaching: Option<bool>,
    pub page_size: Option<u32>,
}

/// Parameters of a participant update: hold and mute, as a worker's call controls use them.
#[derive(Debug, Clone, Default)]
#[allow(missing_docs)]
pub struct UpdateParticipant {
    /// The participant hears nothing of the conference (music, if `hold_url` says so) and is not heard.
    pub hold: Option<bool>,
    /// The participant is not heard; it still hears the others.
    pub muted: Option<bool>,
    /// What a held participant hears (TwiML or audio); Twilio plays its own music when unset.
    pub hold_url: Option<String>,
    pub hold_method: Option<String>,
}

impl Client {
    /// `GET …/Conferences.json`.
    pub fn list_conferences(&self, filter: &ConferenceFilter) -> Paged<Conference> {
        let mut query = Form::new();
        query
            .opt("Status", filter.status.as_ref())
            .opt("FriendlyName", filter.friendly_name.as_ref())
            .opt("DateCreated", filter.date_created.as_ref())
            .opt("DateCreated<", filter.date_created_before.as_ref())
            .opt("DateCreated>", filter.date_created_after.as_ref())
            .opt("DateUpdated", filter.date_updated.as_ref())
            .opt("PageSize", filter.page_size);
        self.paged_2010(self.account_url("Conferences.json"), query, "conferences")
    }

    /// `GET …/Conferences/{CF}.json`.
    pub async fn fetch_conference(&self, conference_sid: &str) -> Result<Conference, Error> {
        self.get(self.account_url(&format!("Conferences/{}.json", segment(conference_sid)))).await
    }

    /// `POST …/Conferences/{CF}.json`.
    pub async fn update_conference(
        &self,
        conference_sid: &str,
        params: &UpdateConference,
    ) -> Result<Conference, Error> {
        let mut form = Form::new();
        form.opt("Status", params.status.as_ref())
            .opt("AnnounceUrl", params.announce_url.as_ref())
            .opt("AnnounceMethod", params.announce_method.as_ref());
        self.post(self.account_url(&format!("Conferences/{}.json", segment(conference_sid))), form).await
    }

    /// Ends a conference: `Status=completed`, which disconnects every participant.
    pub async fn end_conference(&self, conference_sid: &str) -> Result<Conference, Error> {
        let params = UpdateConference { status: Some(ConferenceStatus::Completed), ..Default::default() };
        self.update_conference(conference_sid, &params).await
    }

    /// `GET …/Conferences/{CF}/Participants.json` (only participants of a conference that has not ended).
    pub fn list_participants(&self, conference_sid: &str, filter: &ParticipantFilter) -> Paged<Participant> {
        let mut query = Form::new();
        query
            .opt("Muted", filter.muted)
            .opt("Hold", filter.hold)
            .opt("Coaching", filter.coaching)
            .opt("PageSize", filter.page_size);
        let url = self.account_url(&format!("Conferences/{}/Participants.json", segment(conference_sid)));
        self.paged_2010(url, query, "participants")
    }

    /// `GET …/Conferences/{CF}/Participants/{CallSid}.json`; `call_sid` may also be the participant's label.
    pub async fn fetch_participant(
        &self,
        conference_sid: &str,
        call_sid: &str,
    ) -> Result<Participant, Error> {
        let path = format!("Conferences/{}/Participants/{}.json", segment(conference_sid), segment(call_sid));
        self.get(self.account_url(&path)).await
    }

    /// `POST …/Conferences/{CF}/Participants/{CallSid}.json`: holds or resumes, mutes or unmutes.
    pub async fn update_participant(
        &self,
        conference_sid: &str,
        call_sid: &str,
        params: &UpdateParticipant,
    ) -> Result<Participant, Error> {
        let mut form = Form::new();
        form.opt("Hold", params.hold)
            .opt("Muted", params.muted)
            .opt("HoldUrl", params.hold_url.as_ref())
            .opt("HoldMethod", params.hold_method.as_ref());
        let path = format!("Conferences/{}/Participants/{}.json", segment(conference_sid), segment(call_sid));
        self.post(self.account_url(&path), form).await
    }

    /// `DELETE …/Conferences/{CF}/Participants/{CallSid}.json`: removes (kicks) the participant.
    pub async fn delete_participant(&self, conference_sid: &str, call_sid: &str) -> Result<(), Error> {
        let path = format!("Conferences/{}/Participants/{}.json", segment(conference_sid), segment(call_sid));
        self.delete(self.account_url(&path), None).await
    }
}
