//! The operator's view of a running dashboard: [`urls::HEALTHZ`] on the pages' address, and the
//! Prometheus metrics ([`earshot_core::telemetry`] names them) on an address of their own
//! (`--metrics-bind`, loopback by default), written by the `prometheus-client` crate in the
//! OpenMetrics text format.
//!
//! - **Health**: `200 {"status":"ok","mongodb":"ok"}` when MongoDB answers a `ping` within
//!   [`HEALTH_TIMEOUT`], else `503 {"status":"unavailable","mongodb":"unreachable"}`. It names no
//!   group, member or error.
//! - **Metrics**: read at each scrape from the stores (plays by source, each member's newest play by
//!   source, open sessions), within [`SCRAPE_TIMEOUT`], and from the counters the pages keep since the
//!   process started (sign-in failures, the throttle's refusals), and each scheduled step's newest
//!   run (with its peak memory) and its sums of Spotify's 429s and waits from the state store
//!   ([`earshot_core::step_runs`]). MongoDB not answering sets `earshot_mongodb_up` to 0 and leaves
//!   the store figures out; the scrape still answers.
//!
//! No label holds a secret or a name: the group's id, a play source, and member ids unless the
//! operator switches them off (`--metrics-member-ids false`), in which case each member's figures are
//! folded per source.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context as _, Result};
use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};
use earshot_core::mongo::RAW_RECENTLY_PLAYED;
use earshot_core::records::PlaySource;
use earshot_core::step_runs::{self, RunOutcome};
use earshot_core::telemetry::{self, label};
use mongodb::bson::{Document, doc};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::app::AppState;
use crate::server::{self, ServerLimits};
use crate::urls;

/// How long the health check waits for MongoDB's answer.
pub const HEALTH_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a scrape waits for the stores (Prometheus' own scrape timeout is 10 s by default).
pub const SCRAPE_TIMEOUT: Duration = Duration::from_secs(5);

/// What the pages count for the metrics, since the process started.
#[derive(Debug, Default)]
pub struct SignInCounters {
    failures: AtomicU64,
    refusals: AtomicU64,
}

impl SignInCounters {
    /// A sign-in failed: a wrong group password, or a Spotify sign-in that did not complete.
    pub fn failed(&self) {
        self.failures.fetch_add(1, Ordering::Relaxed);
    }

    /// The login throttle refused an attempt.
    pub fn refused(&self) {
        self.refusals.fetch_add(1, Ordering::Relaxed);
    }

    /// Sign-ins failed so far.
    pub fn failures(&self) -> u64 {
        self.failures.load(Ordering::Relaxed)
    }

    /// Attempts refused so far.
    pub fn refusals(&self) -> u64 {
        self.refusals.load(Ordering::Relaxed)
    }
}

/// `GET /healthz` for the groups served: each group's MongoDB answers a `ping`.
pub async fn health(states: &[Arc<AppState>]) -> Response {
    let mut reachable = true;
    for state in states {
        let ping = state.stores.db.run_command(doc! {"ping": 1});
        match tokio::time::timeout(HEALTH_TIMEOUT, ping).await {
            Ok(Ok(_)) => {}
            Ok(Err(err)) => {
                tracing::warn!(error = %err, "Health check: MongoDB did not answer.");
                reachable = false;
            }
            Err(_) => {
                tracing::warn!(timeout = ?HEALTH_TIMEOUT, "Health check: MongoDB did not answer in time.");
                reachable = false;
            }
        }
    }
    let (status, body) = if reachable {
        (StatusCode::OK, r#"{"status":"ok","mongodb":"ok"}"#)
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            r#"{"status":"unavailable","mongodb":"unreachable"}"#,
        )
    };
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

/// `GET /healthz` of one group's pages.
pub async fn health_of_group(State(state): State<Arc<AppState>>) -> Response {
    health(&[state]).await
}

/// What the metrics server reads.
#[derive(Debug, Clone)]
pub struct MetricsState {
    /// The groups served.
    pub states: Vec<Arc<AppState>>,
    /// Whether labels name members (their ids).
    pub member_ids: bool,
}

/// The metrics app: [`urls::METRICS`] only.
pub fn metrics_app(metrics: MetricsState) -> Router {
    Router::new()
        .route(urls::METRICS, get(scrape))
        .with_state(Arc::new(metrics))
}

/// Serve the metrics on `listener`, within the pages' limits, until ctrl-c.
pub async fn serve_metrics(
    listener: tokio::net::TcpListener,
    metrics: MetricsState,
    limits: ServerLimits,
) -> Result<()> {
    server::serve(listener, metrics_app(metrics), limits, &[], async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
    .context("serving the metrics")
}

/// A label set: `(name, value)` pairs, names from [`label`].
type Labels = Vec<(&'static str, String)>;

/// What the stores say of one group at one instant.
#[derive(Debug, Default)]
struct StoreFigures {
    plays_by_source: Vec<(&'static str, u64)>,
    /// `(member, source)` → seconds since their newest play from it.
    ages: BTreeMap<(String, &'static str), i64>,
    sessions_open: u64,
}

async fn store_figures(state: &AppState, now: DateTime<Utc>) -> Result<StoreFigures> {
    let db = &state.stores.db;
    let plays = db.collection::<Document>(RAW_RECENTLY_PLAYED);
    let mut figures = StoreFigures::default();
    for source in PlaySource::ALL {
        let count = plays
            .count_documents(doc! {"source": source.as_str()})
            .await
            .with_context(|| format!("counting the {} plays", source.as_str()))?;
        figures.plays_by_source.push((source.as_str(), count));
    }
    // Each member's newest play by source: one read of an index each, never a count (a scrape
    // stays cheap at a million plays).
    for member in &state.stores.group.members {
        for (source, at) in earshot_state::newest_plays::by_source(db, &member.id).await? {
            let age = (now - at).num_seconds().max(0);
            figures
                .ages
                .insert((member.id.clone(), source.as_str()), age);
        }
    }
    figures.sessions_open = state.sessions().open_at(now).await?;
    Ok(figures)
}

/// `GET /metrics`: every group's figures in the OpenMetrics text format.
async fn scrape(State(metrics): State<Arc<MetricsState>>) -> Response {
    let plays = Family::<Labels, Gauge>::default();
    let ages = Family::<Labels, Gauge>::default();
    let sessions = Family::<Labels, Gauge>::default();
    let failures = Family::<Labels, Counter>::default();
    let refusals = Family::<Labels, Counter>::default();
    let up = Family::<Labels, Gauge>::default();
    let last_run = Family::<Labels, Gauge>::default();
    let last_duration = Family::<Labels, Gauge<f64, AtomicU64>>::default();
    let last_success = Family::<Labels, Gauge>::default();
    let last_peak_memory = Family::<Labels, Gauge>::default();
    let last_batch_setting = Family::<Labels, Gauge>::default();
    let failures_in_a_row = Family::<Labels, Gauge>::default();
    let rate_limited = Family::<Labels, Counter>::default();
    let spotify_wait = Family::<Labels, Counter<f64, AtomicU64>>::default();
    for state in &metrics.states {
        let group = state.stores.group.id.clone().unwrap_or_default();
        let of_group = vec![(label::GROUP, group.clone())];
        failures
            .get_or_create(&of_group)
            .inc_by(state.sign_ins.failures());
        refusals
            .get_or_create(&of_group)
            .inc_by(state.sign_ins.refusals());
        // The steps' runs, from the state store (MongoDB's answer does not matter here).
        match tokio::time::timeout(SCRAPE_TIMEOUT, step_runs::list(&state.stores.storage)).await {
            Ok(Ok(steps)) => {
                for runs in steps {
                    let Some(newest) = runs.runs.first() else {
                        continue;
                    };
                    let labels = vec![
                        (label::GROUP, group.clone()),
                        (label::STEP, runs.step.clone()),
                    ];
                    last_run
                        .get_or_create(&labels)
                        .set(newest.started_at.timestamp());
                    last_duration
                        .get_or_create(&labels)
                        .set(newest.duration_ms as f64 / 1000.0);
                    if let Some(bytes) = newest.peak_memory_bytes {
                        last_peak_memory
                            .get_or_create(&labels)
                            .set(i64::try_from(bytes).unwrap_or(i64::MAX));
                    }
                    for (setting, value) in &newest.batch_settings {
                        let mut labels = labels.clone();
                        labels.push((label::SETTING, setting.clone()));
                        last_batch_setting
                            .get_or_create(&labels)
                            .set(i64::try_from(*value).unwrap_or(i64::MAX));
                    }
                    last_success
                        .get_or_create(&labels)
                        .set(i64::from(newest.outcome == RunOutcome::Success));
                    failures_in_a_row
                        .get_or_create(&labels)
                        .set(i64::try_from(runs.failures_in_a_row()).unwrap_or(i64::MAX));
                    rate_limited
                        .get_or_create(&labels)
                        .inc_by(runs.totals.rate_limited);
                    spotify_wait
                        .get_or_create(&labels)
                        .inc_by(runs.totals.spotify_wait_ms as f64 / 1000.0);
                }
            }
            Ok(Err(err)) => {
                tracing::warn!(error = %err, group = %group, "Metrics: the steps' runs could not be read.");
            }
            Err(_) => {
                tracing::warn!(timeout = ?SCRAPE_TIMEOUT, group = %group, "Metrics: the steps' runs did not answer in time.");
            }
        }
        let now = state.clock.now();
        let figures = match tokio::time::timeout(SCRAPE_TIMEOUT, store_figures(state, now)).await {
            Ok(Ok(figures)) => figures,
            Ok(Err(err)) => {
                tracing::warn!(error = %format!("{err:#}"), group = %group, "Metrics: the stores did not answer.");
                up.get_or_create(&of_group).set(0);
                continue;
            }
            Err(_) => {
                tracing::warn!(timeout = ?SCRAPE_TIMEOUT, group = %group, "Metrics: the stores did not answer in time.");
                up.get_or_create(&of_group).set(0);
                continue;
            }
        };
        up.get_or_create(&of_group).set(1);
        sessions
            .get_or_create(&of_group)
            .set(i64::try_from(figures.sessions_open).unwrap_or(i64::MAX));
        for (source, count) in figures.plays_by_source {
            let labels = vec![
                (label::GROUP, group.clone()),
                (label::SOURCE, source.to_string()),
            ];
            plays
                .get_or_create(&labels)
                .set(i64::try_from(count).unwrap_or(i64::MAX));
        }
        let mut stalest: BTreeMap<&'static str, i64> = BTreeMap::new();
        for ((member, source), age) in &figures.ages {
            if metrics.member_ids {
                let labels = vec![
                    (label::GROUP, group.clone()),
                    (label::SOURCE, source.to_string()),
                    (label::MEMBER, member.clone()),
                ];
                ages.get_or_create(&labels).set(*age);
            } else {
                let oldest = stalest.entry(source).or_default();
                *oldest = (*oldest).max(*age);
            }
        }
        for (source, age) in stalest {
            let labels = vec![
                (label::GROUP, group.clone()),
                (label::SOURCE, source.to_string()),
            ];
            ages.get_or_create(&labels).set(age);
        }
    }
    let mut registry = Registry::default();
    registry.register(telemetry::PLAYS_STORED, "Plays stored, by source", plays);
    registry.register(
        telemetry::LAST_PLAY_AGE,
        "Seconds since the newest stored play, by source (and member, unless member ids are off: then the member furthest behind)",
        ages,
    );
    registry.register(
        telemetry::SESSIONS_OPEN,
        "Dashboard sessions open",
        sessions,
    );
    registry.register(
        telemetry::SIGN_IN_FAILURES,
        "Sign-ins that failed (a wrong group password, a Spotify sign-in that did not complete) since the dashboard started",
        failures,
    );
    registry.register(
        telemetry::SIGN_IN_REFUSALS,
        "Sign-in attempts the login throttle refused since the dashboard started",
        refusals,
    );
    registry.register(
        telemetry::MONGODB_UP,
        "Whether MongoDB answered this scrape's reads (1) or not (0)",
        up,
    );
    registry.register(
        telemetry::STEP_LAST_RUN,
        "When each scheduled step's newest run began (Unix seconds)",
        last_run,
    );
    registry.register(
        telemetry::STEP_LAST_DURATION,
        "How long each scheduled step's newest run took, in seconds",
        last_duration,
    );
    registry.register(
        telemetry::STEP_LAST_PEAK_MEMORY,
        "The peak resident memory of each scheduled step's newest run, in bytes",
        last_peak_memory,
    );
    registry.register(
        telemetry::STEP_LAST_BATCH_SETTING,
        "Each batch setting each scheduled step's newest run applied",
        last_batch_setting,
    );
    registry.register(
        telemetry::STEP_LAST_SUCCESS,
        "Whether each scheduled step's newest run succeeded (1) or failed or finished in part (0)",
        last_success,
    );
    registry.register(
        telemetry::STEP_FAILURES_IN_A_ROW,
        "Each scheduled step's runs that failed since its last that did not",
        failures_in_a_row,
    );
    registry.register(
        telemetry::SPOTIFY_RATE_LIMITED,
        "Spotify's 429 answers over every recorded run of each scheduled step",
        rate_limited,
    );
    registry.register(
        telemetry::SPOTIFY_WAIT,
        "Seconds each scheduled step's recorded runs waited on Spotify (Retry-After, and backoff before a retry)",
        spotify_wait,
    );
    let mut body = String::new();
    if let Err(err) = encode(&mut body, &registry) {
        tracing::error!(error = %err, "Metrics: could not encode.");
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    (
        [
            (header::CONTENT_TYPE, telemetry::CONTENT_TYPE),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}
