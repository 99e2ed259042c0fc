//! API 2010 Conference and Participant operations (`/2010-04-01/Accounts/{AC}/Conferences….json`), the
//! part of Programmable Voice that TaskRouter's conference instruction creates and the app ends.

use super::{segment, Client, Paged};
use crate::error::Error;
use crate::models::{Conference, ConferenceStatus, Participant};

params! {
    /// Filters of the conference list. Dates are `YYYY-MM-DD`.
    pub struct ConferenceFilter {
        pub status: Option<ConferenceStatus> => "Status",
        /// TaskRouter names a task's conference after the task SID.
        pub friendly_name: Option<String> => "FriendlyName",
        pub date_created: Option<String> => "DateCreated",
        /// Created on or before (`DateCreated<`).
        pub date_created_before: Option<String> => "DateCreated<",
        /// Created on or after (`DateCreated>`).
        pub date_created_after: Option<String> => "DateCreated>",
        pub date_updated: Option<String> => "DateUpdated",
        pub page_size: Option<u32> => "PageSize",
    }
}

params! {
    /// Parameters of a conference update.
    pub struct UpdateConference {
        /// Only `completed` is allowed: it ends the conference and drops every participant.
        pub status: Option<ConferenceStatus> => "Status",
        pub announce_url: Option<String> => "AnnounceUrl",
        pub announce_method: Option<String> => "AnnounceMethod",
    }
}

params! {
    /// Filters of the participant list.
    pub struct ParticipantFilter {
        pub muted: Option<bool> => "Muted",
        pub hold: Option<bool> => "Hold",
        pub coaching: Option<bool> => "Coaching",
        pub page_size: Option<u32> => "PageSize",
    }
}

params! {
    /// Parameters of a participant update: hold and mute, as a worker's call controls use them.
    pub struct UpdateParticipant {
        /// The participant hears nothing of the conference (music, if `hold_url` says so) and is not heard.
        pub hold: Option<bool> => "Hold",
        /// The participant is not heard; it still hears the others.
        pub muted: Option<bool> => "Muted",
        /// What a held participant hears (TwiML or audio); Twilio plays its own music when unset.
        pub hold_url: Option<String> => "HoldUrl",
        pub hold_method: Option<String> => "HoldMethod",
    }
}

impl Client {
    /// `GET …/Conferences.json`.
    pub fn list_conferences(&self, filter: &ConferenceFilter) -> Paged<Conference> {
        self.paged_2010(self.account_url("Conferences.json"), filter.form(), "conferences")
    }

    /// `GET …/Conferences/{CF}.json`.
    pub async fn fetch_conference(&self, conference_sid: &str) -> Result<Conference, Error> {
        self.get(self.conference_url(conference_sid, "")).await
    }

    /// `POST …/Conferences/{CF}.json`.
    pub async fn update_conference(
        &self,
        conference_sid: &str,
        params: &UpdateConference,
    ) -> Result<Conference, Error> {
        self.post(self.conference_url(conference_sid, ""), params.form()).await
    }

    /// Ends a conference: `Status=completed`, which disconnects every participant.
    pub async fn end_conference(&self, conference_sid: &str) -> Result<Conference, Error> {
        let params = UpdateConference { status: Some(ConferenceStatus::Completed), ..Default::default() };
        self.update_conference(conference_sid, &params).await
    }

    /// `GET …/Conferences/{CF}/Participants.json` (only participants of a conference that has not ended).
    pub fn list_participants(&self, conference_sid: &str, filter: &ParticipantFilter) -> Paged<Participant> {
        self.paged_2010(self.conference_url(conference_sid, "/Participants"), filter.form(), "participants")
    }

    /// `GET …/Conferences/{CF}/Participants/{CallSid}.json`; `call_sid` may also be the participant's label.
    pub async fn fetch_participant(
        &self,
        conference_sid: &str,
        call_sid: &str,
    ) -> Result<Participant, Error> {
        self.get(self.participant_url(conference_sid, call_sid)).await
    }

    /// `POST …/Conferences/{CF}/Participants/{CallSid}.json`: holds or resumes, mutes or unmutes.
    pub async fn update_participant(
        &self,
        conference_sid: &str,
        call_sid: &str,
        params: &UpdateParticipant,
    ) -> Result<Participant, Error> {
        self.post(self.participant_url(conference_sid, call_sid), params.form()).await
    }

    /// `DELETE …/Conferences/{CF}/Participants/{CallSid}.json`: removes (kicks) the participant.
    pub async fn delete_participant(&self, conference_sid: &str, call_sid: &str) -> Result<(), Error> {
        self.delete(self.participant_url(conference_sid, call_sid), None).await
    }

    /// `…/Conferences/{CF}{rest}.json`.
    fn conference_url(&self, conference_sid: &str, rest: &str) -> String {
        self.account_url(&format!("Conferences/{}{rest}.json", segment(conference_sid)))
    }

    /// `…/Conferences/{CF}/Participants/{CallSid}.json`.
    fn participant_url(&self, conference_sid: &str, call_sid: &str) -> String {
        self.conference_url(conference_sid, &format!("/Participants/{}", segment(call_sid)))
    }
}
