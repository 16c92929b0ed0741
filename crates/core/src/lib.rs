//! `earshot-core`: what every Earshot binary shares and nothing else.
//!
//! - [`spotify`]: serde models of the Spotify Web API objects the pipeline reads, tolerant of the fields
//!   Spotify removed for development-mode apps in 2026.
//! - [`history`]: Spotify's Extended Streaming History: the entry model (stripped of device fields),
//!   what is kept as a play, and how an imported play matches an API play.
//! - [`records`]: the converted records (one JSON Lines row per play or top item) and their helpers.
//! - [`mongo`]: MongoDB collection names, the deterministic `_id` formulas and the indexes.
//! - [`config`]: the group configuration file (members, apps, time zone, recap destinations).
//! - [`consent`]: each friend's own choices, "Hide me from comparisons".
//! - [`storage`]: one storage type addressed by a URL, a local folder or `gs://bucket/prefix`.
//! - [`env`]: every environment variable Earshot reads, documented once.
//! - [`cli`]: exit codes and logging set-up shared by the binaries.
//! - [`progress`]: progress of long work (a bar on a terminal, JSON lines in logs).
//! - [`period`]: named periods (a year, a month, an ISO week) and their bounds in the group's zone.
//! - [`scope`]: several groups in one deployment: each group's database and storage prefix.
//! - [`layout`]: the storage keys of the data contract (`raw/…`, `converted/…`, `exports/…`).
//! - [`recording`]: one recording across services and releases (ISRC, MusicBrainz id, or names).
//! - [`listens`]: listens as ListenBrainz clients submit them, with ListenBrainz's limits.

pub mod cli;
pub mod config;
pub mod consent;
pub mod derived;
pub mod env;
pub mod erasure;
pub mod export;
pub mod history;
pub mod layout;
pub mod ledger;
pub mod listens;
pub mod mongo;
pub mod period;
pub mod progress;
pub mod recording;
pub mod records;
pub mod scope;
pub mod spotify;
pub mod step_runs;
pub mod storage;
pub mod telemetry;

pub use config::{DestinationConfig, DestinationKind, GroupConfig};
pub use scope::GroupScope;
pub use storage::Storage;
