//! `earshot-state`: what Earshot knows about each member besides their listening: their fetch state
//! (cursor, gaps, authorisation dates), their authorisation status, their streaming-history import
//! progress, the roster of the group with what each one holds, the dashboard's sessions, each member's
//! listen token, each member's newest stored play, and the clock all of it is judged by.
//! `data-fetcher` writes it; `members`, the dashboard and `data-fetcher status` read it.

pub mod clock;
pub mod fetch_state;
pub mod import_progress;
pub mod listen_tokens;
pub mod newest_plays;
pub mod roster;
pub mod sessions;
pub mod status;

use earshot_core::{GroupConfig, Storage};
use mongodb::Database;

/// The stores a member's data lives in.
#[derive(Debug, Clone)]
pub struct Stores {
    /// Raw pages, converted files, state, snapshots, reports.
    pub storage: Storage,
    /// The raw, derived, analytics and bookkeeping collections.
    pub db: Database,
    /// The group config.
    pub group: GroupConfig,
}
