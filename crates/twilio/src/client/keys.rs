//! API 2010 API Key operations (`/2010-04-01/Accounts/{AC}/Keys….json`): the keys whose SID and secret sign
//! the AccessTokens of Twilio's worker SDKs ([`crate::token`]).

use super::{segment, Client, Form, Paged};
use crate::error::Error;
use crate::models::{Key, NewKey};

impl Client {
    /// `POST …/Keys.json`: a new key, with its secret (shown this once: keep it).
    pub async fn create_key(&self, friendly_name: Option<&str>) -> Result<NewKey, Error> {
        let mut form = Form::new();
        form.opt("FriendlyName", friendly_name);
        self.post(self.account_url("Keys.json"), form).await
    }

    /// `GET …/Keys/{SK}.json` (without the secret).
    pub async fn fetch_key(&self, key_sid: &str) -> Result<Key, Error> {
        self.get(self.account_url(&format!("Keys/{}.json", segment(key_sid)))).await
    }

    /// `GET …/Keys.json` (without the secrets).
    pub fn list_keys(&self, page_size: Option<u32>) -> Paged<Key> {
        let mut query = Form::new();
        query.opt("PageSize", page_size);
        self.paged_2010(self.account_url("Keys.json"), query, "keys")
    }

    /// `POST …/Keys/{SK}.json`: renames the key, the only change a key takes.
    pub async fn update_key(&self, key_sid: &str, friendly_name: &str) -> Result<Key, Error> {
        let mut form = Form::new();
        form.add("FriendlyName", friendly_name);
        self.post(self.account_url(&format!("Keys/{}.json", segment(key_sid))), form).await
    }

    /// `DELETE …/Keys/{SK}.json`: the key signs nothing from now on.
    pub async fn delete_key(&self, key_sid: &str) -> Result<(), Error> {
        self.delete(self.account_url(&format!("Keys/{}.json", segment(key_sid))), None).await
    }
}
