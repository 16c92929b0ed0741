//! Per-member fetch state, kept beside the tokens under `state/members/<id>.json` (not secret, plain
//! JSON, written atomically): who the member is, which app and when they authorised, the recently-played
//! cursor, the gaps found, and whether Spotify wants them to reconnect.

use anyhow::{Context as _, Result};
use bytes::Bytes;
use chrono::{DateTime, Months, Utc};
use earshot_core::{Storage, layout};
use serde::{Deserialize, Serialize};

/// Spotify ends a refresh token this long after the member's original authorisation (since 2026-07-20).
pub const AUTHORISATION_MONTHS: u32 = 6;
/// `fetch` and `status` warn this many days before the authorisation ends.
pub const EXPIRY_WARNING_DAYS: i64 = 14;

/// A window in which plays may have been missed: more than 50 plays happened between two fetches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gap {
    /// The cursor the fetch started from (plays after it were wanted).
    pub after: DateTime<Utc>,
    /// The oldest play the full page reached; plays between `after` and this may be lost.
    pub before: DateTime<Utc>,
    /// When the gap was found.
    pub detected_at: DateTime<Utc>,
}

/// One member's state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemberState {
    /// Spotify user id.
    pub member: String,
    /// Display name from /v1/me.
    pub display_name: String,
    /// The app (client id) the member authorised.
    pub client_id: String,
    /// When the member last went through `data-fetcher auth` (the 6-month clock starts here).
    pub authorised_at: DateTime<Utc>,
    /// Why Spotify refused the refresh token, when it did; cleared by a new `auth`.
    #[serde(default)]
    pub needs_reauth: Option<String>,
    /// `played_at` (unix ms) of the newest play stored: the next fetch asks for plays after it.
    #[serde(default)]
    pub cursor_after_ms: Option<i64>,
    /// The newest play stored.
    #[serde(default)]
    pub last_play_at: Option<DateTime<Utc>>,
    /// When recently played was last fetched.
    #[serde(default)]
    pub last_fetch_at: Option<DateTime<Utc>>,
    /// Windows where plays may have been missed.
    #[serde(default)]
    pub gaps: Vec<Gap>,
}

impl MemberState {
    /// When Spotify ends this member's authorisation.
    pub fn authorisation_ends(&self) -> DateTime<Utc> {
        self.authorised_at
            .checked_add_months(Months::new(AUTHORISATION_MONTHS))
            .unwrap_or(self.authorised_at)
    }

    /// Whole days until the authorisation ends (negative once it has).
    pub fn days_left(&self, now: DateTime<Utc>) -> i64 {
        (self.authorisation_ends() - now).num_days()
    }
}

/// Load a member's state; `None` for someone never connected.
pub async fn load(storage: &Storage, member: &str) -> Result<Option<MemberState>> {
    let path = layout::member_state_key(member);
    if !storage.exists(&path).await? {
        return Ok(None);
    }
    let bytes = storage.read_all(&path).await?;
    let state = serde_json::from_slice(&bytes)
        .with_context(|| format!("`{}` is not a member state file", storage.location(&path)))?;
    Ok(Some(state))
}

/// Save a member's state atomically.
pub async fn save(storage: &Storage, state: &MemberState) -> Result<()> {
    let bytes = serde_json::to_vec_pretty(state)?;
    storage
        .write(&layout::member_state_key(&state.member), Bytes::from(bytes))
        .await?;
    Ok(())
}

/// Every connected member, by id.
pub async fn list(storage: &Storage) -> Result<Vec<MemberState>> {
    let mut out = Vec::new();
    for path in storage.list(&layout::member_states_prefix()).await? {
        if let Some(member) = layout::member_of_state_key(&path)
            && let Some(state) = load(storage, member).await?
        {
            out.push(state);
        }
    }
    Ok(out)
}
