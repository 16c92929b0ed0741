//! A friend's own choices about how the group sees them, kept in the state store
//! ([`layout::consent_key`], erased with the member).
//!
//! "Hide me from comparisons": while it is set, no answer that compares the friend with another is
//! shown to anyone, stored in a run or posted in a recap: the rows of every metric whose comparison
//! columns (earshot-metrics' `Role::Pair`) name them, their taste similarity with anyone (so taste
//! match, closest friend and the recommendations drawn from their plays), and ALS recommendations
//! trained on their plays. Group totals still count their plays. The friend sets it on "Your data".

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::layout;
use crate::storage::{Storage, StorageError};

/// One member's choices.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Consent {
    /// The member.
    pub member: String,
    /// Keep them out of every comparison with another friend.
    pub hide_from_comparisons: bool,
    /// When they last changed it.
    pub updated_at: DateTime<Utc>,
}

/// Why the consent store could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ConsentError {
    /// Reading or writing storage failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// A consent object that is not one.
    #[error("`{location}` is not a member's consent: {message}")]
    Corrupt {
        /// Where it is.
        location: String,
        /// What is wrong.
        message: String,
    },
}

/// A member's choices, if they made any.
pub async fn read(storage: &Storage, member: &str) -> Result<Option<Consent>, ConsentError> {
    let key = layout::consent_key(member);
    match storage.read_all(&key).await {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| ConsentError::Corrupt {
                location: storage.location(&key),
                message: e.to_string(),
            }),
        Err(StorageError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Whether `member` hides from comparisons.
pub async fn hides(storage: &Storage, member: &str) -> Result<bool, ConsentError> {
    Ok(read(storage, member)
        .await?
        .is_some_and(|c| c.hide_from_comparisons))
}

/// Every member who hides from comparisons.
pub async fn hidden(storage: &Storage) -> Result<BTreeSet<String>, ConsentError> {
    let prefix = layout::consents_prefix();
    let mut out = BTreeSet::new();
    for key in storage.list(&prefix).await? {
        let Some(member) = key
            .strip_prefix(&prefix)
            .and_then(|k| k.strip_suffix(".json"))
        else {
            continue;
        };
        if hides(storage, member).await? {
            out.insert(member.to_string());
        }
    }
    Ok(out)
}

/// Set or clear "Hide me from comparisons" for `member`.
pub async fn set_hidden(
    storage: &Storage,
    member: &str,
    hide: bool,
    now: DateTime<Utc>,
) -> Result<(), ConsentError> {
    let consent = Consent {
        member: member.to_string(),
        hide_from_comparisons: hide,
        updated_at: now,
    };
    let bytes = serde_json::to_vec(&consent).expect("a consent serialises");
    storage
        .write(&layout::consent_key(member), bytes.into())
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_member_hides_and_shows_again_and_others_are_untouched() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::local(dir.path());
        let now = Utc::now();
        assert!(hidden(&storage).await.unwrap().is_empty());
        set_hidden(&storage, "ana.mx", true, now).await.unwrap();
        set_hidden(&storage, "ben", false, now).await.unwrap();
        assert_eq!(
            hidden(&storage).await.unwrap(),
            BTreeSet::from(["ana.mx".to_string()])
        );
        assert!(hides(&storage, "ana.mx").await.unwrap());
        assert!(!hides(&storage, "ben").await.unwrap());
        set_hidden(&storage, "ana.mx", false, now).await.unwrap();
        assert!(hidden(&storage).await.unwrap().is_empty());

        storage
            .write(&layout::consent_key("chloe-r"), b"not json".to_vec().into())
            .await
            .unwrap();
        let err = hidden(&storage).await.unwrap_err().to_string();
        assert!(err.contains("consent/chloe-r.json"), "{err}");
    }
}
