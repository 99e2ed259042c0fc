//! The account's API keys (API 2010 `/Keys`): create, rename, delete, and the reads the facade needs.
//!
//! A key routes nothing and emits no event: it only has to last, so that an AccessToken signed with its
//! secret stays valid across a restart, and be found by SID when a token names it (`iss`).

use super::{Core, Key, Reply};
use crate::error::Error;
use crate::model::{ApiKey, Secret};
use crate::sid::{Prefix, Sid};
use crate::time::Timestamp;

/// Longest `FriendlyName` of a key, as Twilio documents it ("up to 64 characters long").
const MAX_FRIENDLY_NAME: usize = 64;

fn check_friendly_name(name: &Option<String>) -> Result<(), Error> {
    match name {
        Some(n) if n.chars().count() > MAX_FRIENDLY_NAME => Err(Error::invalid(
            "FriendlyName",
            format!("must be at most {MAX_FRIENDLY_NAME} characters, not {}", n.chars().count()),
        )),
        _ => Ok(()),
    }
}

impl Core {
    pub(crate) fn create_api_key(
        &mut self,
        now: Timestamp,
        friendly_name: Option<String>,
        secret: Secret,
    ) -> Result<Reply, Error> {
        check_friendly_name(&friendly_name)?;
        if secret.expose().is_empty() {
            return Err(Error::invalid("Secret", "must not be empty: draw it from a random source"));
        }
        let sid = self.out.sid(Prefix::ApiKey);
        let key = ApiKey { sid, friendly_name, secret, date_created: now, date_updated: now };
        self.api_keys.insert(sid, key.clone());
        self.out.touch(Key::ApiKey(sid));
        Ok(Reply::ApiKey(key))
    }

    pub(crate) fn update_api_key(
        &mut self,
        now: Timestamp,
        sid: Sid,
        friendly_name: Option<String>,
    ) -> Result<Reply, Error> {
        check_friendly_name(&friendly_name)?;
        let not_found = self.api_key_not_found(sid);
        let key = self.api_keys.get_mut(&sid).ok_or(not_found)?;
        let Some(name) = friendly_name else { return Ok(Reply::ApiKey(key.clone())) };
        key.friendly_name = Some(name);
        key.date_updated = now;
        let key = key.clone();
        self.out.touch(Key::ApiKey(sid));
        Ok(Reply::ApiKey(key))
    }

    pub(crate) fn delete_api_key(&mut self, sid: Sid) -> Result<Reply, Error> {
        if self.api_keys.remove(&sid).is_none() {
            return Err(self.api_key_not_found(sid));
        }
        self.out.touch(Key::ApiKey(sid));
        Ok(Reply::Deleted)
    }

    /// One API key.
    pub fn api_key(&self, sid: Sid) -> Result<&ApiKey, Error> {
        self.api_keys.get(&sid).ok_or_else(|| self.api_key_not_found(sid))
    }

    /// Every API key, in SID order.
    pub fn api_keys(&self) -> Vec<&ApiKey> {
        self.api_keys.values().collect()
    }

    fn api_key_not_found(&self, sid: Sid) -> Error {
        Error::not_found(format!("/2010-04-01/Accounts/{}/Keys/{sid}.json", self.out.account_sid))
    }
}
