//! Erase and the pipeline, coordinated: a step never writes a member back after `members erase`.
//!
//! `members erase` writes its marker ([`layout::erasure_key`]) and then moves the erasure epoch
//! ([`layout::erasure_epoch_key`], a counter naming no one) before it removes anything. The steps that
//! store what mixes every member (`data-upload`, `create-collections`, `gcs-export`, `analytics`) take
//! an [`ErasureGuard`] when they start:
//!
//! - while a marker exists they refuse to start ([`ErasureError::InProgress`], naming the member);
//! - before they store anything, and again after, they [`ErasureGuard::check`]: a marker, or an epoch
//!   that moved since they started, means an erase ran during the run. Found before storing, the run
//!   stops; found after, the step withdraws what it stored (or drops the erased member's rows) and
//!   stops. Either way it exits 1, and the next run computes without the member.
//!
//! The steps that write one member's own objects (`data-fetcher fetch`, `enrich` and `import`,
//! `json-converter`) take the guard too, refuse to start while a marker exists, and check the member
//! before each store ([`ErasureGuard::member_erased`]): what they would write for a member being erased,
//! or erased since they started, is dropped, and a store that an erase overtook is withdrawn.
//!
//! A friend who erases themselves from the dashboard ("Erase me") also leaves the group: a
//! [`Departure`] ([`layout::departure_key`]) is written before the erase begins and outlives it. The
//! guard counts a member who has left as erased, so no step fetches, imports, converts or uploads
//! them again while the group config still lists them; signing in again ([`rejoin`]) removes it.
//!
//! Why both checks are enough: the erase moves the epoch before it deletes. A store that finished
//! before the epoch moved is deleted by the erase; a store that finished after it is seen by the
//! check that follows it.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::layout;
use crate::storage::{Storage, StorageError};

/// Why a step may not go on.
#[derive(Debug, thiserror::Error)]
pub enum ErasureError {
    /// A `members erase` is in progress (its marker exists): the step must not start or store.
    #[error(
        "`{step}`: member {} is being erased (`members erase`); `{step}` does not run until the erase \
         has finished. Run it again afterwards (or finish an interrupted erase with `members erase \
         --member <id>`).",
        members.iter().map(|m| format!("`{m}`")).collect::<Vec<_>>().join(", ")
    )]
    InProgress {
        /// The step refusing.
        step: String,
        /// Members whose erasure markers exist.
        members: Vec<String>,
    },
    /// A `members erase` ran while the step was running: what it stored was withdrawn.
    #[error(
        "`{step}`: a member was erased while this run was in progress, so it stopped{}. Run it \
         again: it computes without them.",
        if *withdrawn { " and withdrew what it had stored" } else { " before storing anything" }
    )]
    ErasedDuringRun {
        /// The step.
        step: String,
        /// Whether the step had stored something, now withdrawn.
        withdrawn: bool,
    },
    /// Reading the markers or the epoch failed.
    #[error(transparent)]
    Storage(#[from] StorageError),
    /// The epoch object is not ours.
    #[error("`{location}` is not an erasure epoch: {message}")]
    Corrupt {
        /// Where it is.
        location: String,
        /// What is wrong.
        message: String,
    },
}

/// How often a step that found an erase during its run looks whether it has finished.
pub const WAIT_POLL: std::time::Duration = std::time::Duration::from_secs(2);
/// How long it waits at most before it stops (exit 1; the next scheduled run redoes it).
pub const WAIT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(15 * 60);

#[derive(Debug, Default, Serialize, Deserialize)]
struct Epoch {
    /// How many erases have started.
    epoch: u64,
}

/// The members whose erasure is in progress.
pub async fn in_progress(storage: &Storage) -> Result<Vec<String>, StorageError> {
    let prefix = layout::erasures_prefix();
    Ok(storage
        .list(&prefix)
        .await?
        .iter()
        .filter_map(|key| key.strip_prefix(&prefix)?.strip_suffix(".json"))
        .map(str::to_string)
        .collect())
}

/// Whether storage still holds an object under one of the member's own prefixes
/// ([`layout::member_prefixes`]: their raw pages, imported history and converted files).
pub async fn member_objects_remain(storage: &Storage, member: &str) -> Result<bool, StorageError> {
    for prefix in layout::member_prefixes(member) {
        if !storage.list(&prefix).await?.is_empty() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The erasure epoch: how many erases have started (0 before the first).
pub async fn epoch(storage: &Storage) -> Result<u64, ErasureError> {
    let key = layout::erasure_epoch_key();
    match storage.read_all(&key).await {
        Ok(bytes) => serde_json::from_slice::<Epoch>(&bytes)
            .map(|e| e.epoch)
            .map_err(|e| ErasureError::Corrupt {
                location: storage.location(&key),
                message: e.to_string(),
            }),
        Err(StorageError::NotFound { .. }) => Ok(0),
        Err(e) => Err(e.into()),
    }
}

/// Move the epoch on: `members erase` calls this after writing its marker, before removing anything.
pub async fn advance_epoch(storage: &Storage) -> Result<u64, ErasureError> {
    let next = epoch(storage).await? + 1;
    let bytes = serde_json::to_vec(&Epoch { epoch: next }).expect("an epoch serialises");
    storage
        .write(&layout::erasure_epoch_key(), bytes.into())
        .await?;
    Ok(next)
}

/// A member who left the group by erasing themselves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Departure {
    /// The member.
    pub member: String,
    /// When they left.
    pub left_at: DateTime<Utc>,
}

/// Record that `member` left the group at `at` (before their erase begins). Leaving twice keeps the
/// first date.
pub async fn mark_left(
    storage: &Storage,
    member: &str,
    at: DateTime<Utc>,
) -> Result<(), ErasureError> {
    let key = layout::departure_key(member);
    if storage.exists(&key).await? {
        return Ok(());
    }
    let departure = Departure {
        member: member.to_string(),
        left_at: at,
    };
    let bytes = serde_json::to_vec(&departure).expect("a departure serialises");
    storage.write(&key, bytes.into()).await?;
    Ok(())
}

/// Every member who has left, with when.
pub async fn departures(
    storage: &Storage,
) -> Result<BTreeMap<String, DateTime<Utc>>, ErasureError> {
    let prefix = layout::departures_prefix();
    let mut left = BTreeMap::new();
    for key in storage.list(&prefix).await? {
        let bytes = storage.read_all(&key).await?;
        let departure: Departure =
            serde_json::from_slice(&bytes).map_err(|e| ErasureError::Corrupt {
                location: storage.location(&key),
                message: format!("not a departure: {e}"),
            })?;
        left.insert(departure.member, departure.left_at);
    }
    Ok(left)
}

/// Whether `member` has left the group.
pub async fn has_left(storage: &Storage, member: &str) -> Result<bool, ErasureError> {
    Ok(storage.exists(&layout::departure_key(member)).await?)
}

/// The group as the steps see it: the config without the members who have left (whom no step
/// counts, lists or names until they sign in again; `status` still shows them as left).
pub async fn without_departed(
    storage: &Storage,
    group: &crate::GroupConfig,
) -> Result<crate::GroupConfig, ErasureError> {
    let left = departures(storage).await?;
    let mut present = group.clone();
    present.members.retain(|m| !left.contains_key(&m.id));
    Ok(present)
}

/// A member who left signs in again: their departure goes, and the steps take them again. Whether
/// they had left.
pub async fn rejoin(storage: &Storage, member: &str) -> Result<bool, ErasureError> {
    Ok(storage.delete(&layout::departure_key(member)).await?)
}

/// A step's view of the erasures, taken when it starts.
#[derive(Debug, Clone)]
pub struct ErasureGuard {
    storage: Storage,
    step: String,
    epoch: u64,
}

impl ErasureGuard {
    /// Refuse to start while an erase is in progress; otherwise remember the epoch.
    pub async fn begin(storage: &Storage, step: &str) -> Result<ErasureGuard, ErasureError> {
        let members = in_progress(storage).await?;
        if !members.is_empty() {
            return Err(ErasureError::InProgress {
                step: step.to_string(),
                members,
            });
        }
        Ok(ErasureGuard {
            storage: storage.clone(),
            step: step.to_string(),
            epoch: epoch(storage).await?,
        })
    }

    /// `Ok` when no erase started since [`ErasureGuard::begin`] (`stored`: whether the step has stored
    /// something, for the message).
    pub async fn check(&self, stored: bool) -> Result<(), ErasureError> {
        let now = epoch(&self.storage).await?;
        if now != self.epoch || !in_progress(&self.storage).await?.is_empty() {
            tracing::warn!(
                step = %self.step,
                "A member was erased while this run was in progress: it stops{}.",
                if stored { " and withdraws what it stored" } else { "" }
            );
            return Err(ErasureError::ErasedDuringRun {
                step: self.step.clone(),
                withdrawn: stored,
            });
        }
        Ok(())
    }
}

impl ErasureGuard {
    /// Whether nothing of `member` may be stored now: their erase is in progress (its marker
    /// exists), or they have left the group ([`Departure`]).
    pub async fn being_erased(&self, member: &str) -> Result<bool, ErasureError> {
        Ok(self.storage.exists(&layout::erasure_key(member)).await?
            || has_left(&self.storage, member).await?)
    }

    /// Whether a step that writes one member's objects must drop what it would write for `member`:
    /// their marker exists, or an erase ran since the guard began and `witness` (an object the erase
    /// removes and the step does not write first, e.g. the raw page being converted, or the fetch
    /// state read at the start) is gone. Call it before each store, and [`Self::being_erased`] after
    /// it, withdrawing the store when that says yes.
    pub async fn member_erased(&self, member: &str, witness: &str) -> Result<bool, ErasureError> {
        if self.being_erased(member).await? {
            return Ok(true);
        }
        if epoch(&self.storage).await? == self.epoch {
            return Ok(false);
        }
        Ok(!self.storage.exists(witness).await?)
    }

    /// Wait until no erase is in progress (checking every `poll`, for at most `timeout`), then take the
    /// epoch again: for a step that found an erase ran during it and must redo its work without the
    /// member once the erase has finished.
    pub async fn wait_until_finished(
        &mut self,
        poll: std::time::Duration,
        timeout: std::time::Duration,
    ) -> Result<(), ErasureError> {
        let started = std::time::Instant::now();
        loop {
            let members = in_progress(&self.storage).await?;
            if members.is_empty() {
                self.epoch = epoch(&self.storage).await?;
                return Ok(());
            }
            if started.elapsed() >= timeout {
                return Err(ErasureError::InProgress {
                    step: self.step.clone(),
                    members,
                });
            }
            tokio::time::sleep(poll).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_member_who_left_counts_as_erased_until_they_rejoin() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::local(dir.path());
        let guard = ErasureGuard::begin(&storage, "json-converter")
            .await
            .unwrap();
        assert!(!guard.being_erased("ben_k").await.unwrap());
        let at = Utc::now();
        mark_left(&storage, "ben_k", at).await.unwrap();
        mark_left(&storage, "ben_k", at + chrono::Duration::days(1))
            .await
            .unwrap();
        assert_eq!(
            departures(&storage).await.unwrap().get("ben_k"),
            Some(&at),
            "the first date"
        );
        assert!(guard.being_erased("ben_k").await.unwrap());
        assert!(guard.member_erased("ben_k", "raw/x").await.unwrap());
        assert!(!guard.being_erased("ana.mx").await.unwrap());
        // Leaving is no erase in progress: the steps still start.
        ErasureGuard::begin(&storage, "analytics").await.unwrap();
        assert!(rejoin(&storage, "ben_k").await.unwrap());
        assert!(!guard.being_erased("ben_k").await.unwrap());
        assert!(departures(&storage).await.unwrap().is_empty());
    }

    #[tokio::test]
    async fn a_run_refuses_during_an_erase_and_notices_one_that_ran_during_it() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::local(dir.path());
        let guard = ErasureGuard::begin(&storage, "analytics").await.unwrap();
        guard.check(false).await.unwrap();

        storage
            .write(&layout::erasure_key("chloe-r"), b"{}".to_vec().into())
            .await
            .unwrap();
        let err = ErasureGuard::begin(&storage, "analytics")
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("`chloe-r`") && err.contains("`analytics`"),
            "{err}"
        );
        assert!(guard.check(false).await.is_err(), "a marker appeared");

        assert_eq!(advance_epoch(&storage).await.unwrap(), 1);
        storage
            .delete(&layout::erasure_key("chloe-r"))
            .await
            .unwrap();
        let err = guard.check(true).await.unwrap_err().to_string();
        assert!(err.contains("withdrew what it had stored"), "{err}");
        let after = ErasureGuard::begin(&storage, "analytics").await.unwrap();
        after.check(true).await.unwrap();
        let epoch_text = String::from_utf8(
            storage
                .read_all(&layout::erasure_epoch_key())
                .await
                .unwrap()
                .to_vec(),
        )
        .unwrap();
        assert!(!epoch_text.contains("chloe"), "the epoch names no one");
    }
}
