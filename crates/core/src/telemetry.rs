//! What the operator watches: the Prometheus metrics the dashboard serves on its metrics address
//! (`dashboard --metrics-bind`), by name, and the labels they carry. Names are written without the
//! `_total` a counter gains in the exposition (OpenMetrics adds it).
//!
//! Labels never carry a secret or a name: at most the group's id, a play source and, unless the
//! operator switches them off ([`crate::env::EARSHOT_METRICS_MEMBER_IDS`]), a member's id.

/// Gauge, by `group` and `source`: plays stored.
pub const PLAYS_STORED: &str = "earshot_plays_stored";
/// Gauge, by `group`, `source` and `member`: seconds since the member's newest stored play from that
/// source. Without member ids, by `group` and `source`: the oldest of them (the member furthest
/// behind).
pub const LAST_PLAY_AGE: &str = "earshot_last_play_age_seconds";
/// Gauge, by `group`: dashboard sessions open (not yet ended or expired).
pub const SESSIONS_OPEN: &str = "earshot_sessions_open";
/// Counter, by `group`: sign-ins that failed (a wrong group password, a Spotify sign-in that did not
/// complete) since the dashboard started.
pub const SIGN_IN_FAILURES: &str = "earshot_sign_in_failures";
/// Counter, by `group`: sign-in attempts the login throttle refused since the dashboard started.
pub const SIGN_IN_REFUSALS: &str = "earshot_sign_in_refusals";
/// Gauge, by `group`: 1 when MongoDB answered the scrape's reads, 0 when it did not (the store
/// metrics are then left out).
pub const MONGODB_UP: &str = "earshot_mongodb_up";

/// Gauge, by `group` and `step`: when the step's newest recorded run began (Unix seconds).
/// `time() - earshot_step_last_run_timestamp_seconds` is how long ago a step last ran.
pub const STEP_LAST_RUN: &str = "earshot_step_last_run_timestamp_seconds";
/// Gauge, by `group` and `step`: how long the step's newest run took, in seconds.
pub const STEP_LAST_DURATION: &str = "earshot_step_last_run_duration_seconds";
/// Gauge, by `group` and `step`: the peak resident memory of the step's newest run, in bytes (left
/// out for a run that could not read it).
pub const STEP_LAST_PEAK_MEMORY: &str = "earshot_step_last_run_peak_memory_bytes";
/// Gauge, by `group`, `step` and `setting`: each batch setting the step's newest run applied
/// ([`crate::step_runs::batch`]).
pub const STEP_LAST_BATCH_SETTING: &str = "earshot_step_last_run_batch_setting";
/// Gauge, by `group` and `step`: 1 when the step's newest run succeeded, 0 when it failed or
/// finished in part.
pub const STEP_LAST_SUCCESS: &str = "earshot_step_last_run_success";
/// Gauge, by `group` and `step`: the step's runs that failed since its last that did not.
pub const STEP_FAILURES_IN_A_ROW: &str = "earshot_step_failed_runs_in_a_row";
/// Counter, by `group` and `step`: Spotify's 429 answers over every recorded run of the step.
pub const SPOTIFY_RATE_LIMITED: &str = "earshot_spotify_rate_limited";
/// Counter, by `group` and `step`: seconds the step's recorded runs waited on Spotify (a 429's
/// `Retry-After`, and the backoff before retrying a 5xx or a failed connection).
pub const SPOTIFY_WAIT: &str = "earshot_spotify_wait_seconds";

/// The metrics' label names.
pub mod label {
    /// The group's id (empty for a deployment of one group without one).
    pub const GROUP: &str = "group";
    /// A play source ([`crate::records::PlaySource`]: `api`, `history`, `listenbrainz`, …).
    pub const SOURCE: &str = "source";
    /// A member's id.
    pub const MEMBER: &str = "member";
    /// A scheduled step: the DAG's task id ([`crate::step_runs`]).
    pub const STEP: &str = "step";
    /// A batch setting's name ([`crate::step_runs::batch`]).
    pub const SETTING: &str = "setting";
}

/// The exposition's content type (OpenMetrics text, which Prometheus reads).
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
