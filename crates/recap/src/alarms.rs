//! The stall alarm, where the group talks (`recap --alarms`, run daily).
//!
//! A poller that stops does so silently: nobody reads the logs, and the plays just stop arriving. So
//! the daily run looks for two conditions and tells the group's destinations:
//!
//! - **a stalled member**: a connected member (Spotify connected and not ended or refused, or holding
//!   a listen token) whose newest stored play, or their connection if it is newer, is
//!   `alarms.stalled_after_hours` old (48 by default);
//! - **a failing step**: a scheduled step whose last `alarms.failed_runs` runs (3 by default) failed
//!   ([`earshot_core::step_runs`]).
//!
//! Each condition is an incident: one message when it opens, and one more when it clears, whatever
//! happens in between (a play older than the threshold arriving, more failures). An open incident is
//! kept in the state store ([`layout::member_alarm_key`], [`layout::step_alarm_key`]; a member's is
//! erased with them) until every destination that was told it opened has been told it cleared. Each
//! message goes once per destination through the posts ledger (`recap_posts`, as the weekly recap),
//! under a key made of the message and a hash of the incident, so a re-run posts nothing, a failed
//! destination is posted by the next run, and the ledger names no one. Destination URLs are secrets,
//! read and redacted as the weekly recap's are. A member who left the group, whom the config no
//! longer lists, or who is no longer connected (the reconnect reminders speak for them) has their
//! incident dropped without a message.

use std::collections::BTreeMap;

use anyhow::{Context as _, Result};
use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use earshot_core::step_runs::{self, StepRuns};
use earshot_core::storage::StorageError;
use earshot_core::{GroupConfig, Storage, layout};
use mongodb::Database;
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use tracing::{info, warn};

use crate::formats::Notice;
use crate::message::Markup;
use crate::post::Policy;

/// What an incident is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlarmKind {
    /// A connected member with no new play for too long.
    StalledMember,
    /// A scheduled step whose last runs all failed.
    FailingStep,
}

/// Whether a message says an incident opened or cleared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlarmState {
    /// It began.
    Opened,
    /// It is over.
    Cleared,
}

/// A condition that holds now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    /// What it is about.
    pub kind: AlarmKind,
    /// The member's id or the step's name.
    pub subject: String,
    /// Since when: the member's newest play (or connection), the first failed run of the streak.
    pub since: DateTime<Utc>,
    /// How many runs failed in a row (a failing step).
    pub failed_runs: usize,
}

/// An incident, as the state store keeps it until it has cleared everywhere.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Incident {
    /// What it is about.
    pub kind: AlarmKind,
    /// The member's id or the step's name.
    pub subject: String,
    /// Since when the condition held when it opened.
    pub since: DateTime<Utc>,
    /// How many runs had failed in a row when it opened (a failing step).
    #[serde(default)]
    pub failed_runs: usize,
    /// When the alarm found it.
    pub opened_at: DateTime<Utc>,
    /// When the alarm found it over.
    #[serde(default)]
    pub cleared_at: Option<DateTime<Utc>>,
    /// A hash of the incident: its messages' ledger keys are made of it, so the ledger names no one.
    pub id: String,
}

impl Incident {
    fn open(condition: &Condition, now: DateTime<Utc>) -> Incident {
        let digest = Sha256::digest(
            format!(
                "earshot alarm|{:?}|{}|{}|{}",
                condition.kind,
                condition.subject,
                condition.since.to_rfc3339(),
                now.to_rfc3339()
            )
            .as_bytes(),
        );
        Incident {
            kind: condition.kind,
            subject: condition.subject.clone(),
            since: condition.since,
            failed_runs: condition.failed_runs,
            opened_at: now,
            cleared_at: None,
            id: earshot_state::sessions::hex(&digest[..8]),
        }
    }

    /// Where the state store keeps it.
    pub fn key(&self) -> String {
        key_of(self.kind, &self.subject)
    }

    fn ledger_key(&self, state: AlarmState) -> String {
        let state = match state {
            AlarmState::Opened => "opened",
            AlarmState::Cleared => "cleared",
        };
        format!("alarm-{}-{state}", self.id)
    }
}

fn key_of(kind: AlarmKind, subject: &str) -> String {
    match kind {
        AlarmKind::StalledMember => layout::member_alarm_key(subject),
        AlarmKind::FailingStep => layout::step_alarm_key(subject),
    }
}

/// A connected member, as the alarm sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watched {
    /// Their id.
    pub member: String,
    /// Their newest stored play, from any source.
    pub newest_play: Option<DateTime<Utc>>,
    /// When they last connected (Spotify authorisation, listen token).
    pub connected_at: DateTime<Utc>,
}

/// The conditions that hold at `now`: each watched member whose newest play (or connection, if newer)
/// is at least `alarms.stalled_after_hours` old, and each step whose last `alarms.failed_runs` runs
/// failed.
pub fn conditions(
    members: &[Watched],
    steps: &[StepRuns],
    group: &GroupConfig,
    now: DateTime<Utc>,
) -> Vec<Condition> {
    let stalled_after = Duration::hours(i64::from(group.alarms.stalled_after_hours));
    let mut out = Vec::new();
    for watched in members {
        let since = watched
            .newest_play
            .map_or(watched.connected_at, |play| play.max(watched.connected_at));
        if now - since >= stalled_after {
            out.push(Condition {
                kind: AlarmKind::StalledMember,
                subject: watched.member.clone(),
                since,
                failed_runs: 0,
            });
        }
    }
    for runs in steps {
        let failed = runs.failures_in_a_row();
        if failed >= group.alarms.failed_runs as usize && failed > 0 {
            out.push(Condition {
                kind: AlarmKind::FailingStep,
                subject: runs.step.clone(),
                since: runs.runs[failed - 1].started_at,
                failed_runs: failed,
            });
        }
    }
    out
}

/// What the incidents become at `now`, given the conditions that hold: `(to write, to delete)`.
/// A condition without an incident (or whose incident had cleared) opens one; an open incident whose
/// condition no longer holds clears; an incident about a member who is not `watched` (gone from the
/// group or the config, or disconnected: the reconnect reminders speak for them) is dropped.
pub fn update(
    incidents: &[Incident],
    conditions: &[Condition],
    watched: impl Fn(&str) -> bool,
    now: DateTime<Utc>,
) -> (Vec<Incident>, Vec<Incident>) {
    let holding: BTreeMap<(AlarmKind, &str), &Condition> = conditions
        .iter()
        .map(|c| ((c.kind, c.subject.as_str()), c))
        .collect();
    let mut known: BTreeMap<(AlarmKind, &str), &Incident> = BTreeMap::new();
    let (mut write, mut drop) = (Vec::new(), Vec::new());
    for incident in incidents {
        if incident.kind == AlarmKind::StalledMember && !watched(&incident.subject) {
            drop.push(incident.clone());
            continue;
        }
        known.insert((incident.kind, incident.subject.as_str()), incident);
        if incident.cleared_at.is_none()
            && !holding.contains_key(&(incident.kind, incident.subject.as_str()))
        {
            let mut cleared = incident.clone();
            cleared.cleared_at = Some(now);
            write.push(cleared);
        }
    }
    for (subject, condition) in holding {
        match known.get(&subject) {
            Some(incident) if incident.cleared_at.is_none() => {}
            // New, or the last incident had cleared (its "cleared" messages not all posted: the new
            // incident replaces it).
            _ => write.push(Incident::open(condition, now)),
        }
    }
    (write, drop)
}

/// One message about an incident.
#[derive(Debug, Clone, Serialize)]
pub struct Alarm {
    /// What this is, for a generic webhook.
    pub kind: &'static str,
    /// What the incident is about.
    pub alarm: AlarmKind,
    /// Whether it opened or cleared.
    pub state: AlarmState,
    /// The member (a stalled member).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub member: Option<String>,
    /// Their display name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The step (a failing step).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<String>,
    /// Since when, in the group's zone (`YYYY-MM-DD HH:MM`).
    pub since: String,
    /// The threshold crossed: hours without a play, or runs failed in a row.
    pub threshold: u32,
    /// How many runs had failed in a row (a failing step).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed_runs: Option<usize>,
    #[serde(skip)]
    ledger_key: String,
    #[serde(skip)]
    follows: Option<String>,
}

impl Alarm {
    fn of(incident: &Incident, group: &GroupConfig, zone: Tz) -> Alarm {
        let state = if incident.cleared_at.is_some() {
            AlarmState::Cleared
        } else {
            AlarmState::Opened
        };
        let member = incident.kind == AlarmKind::StalledMember;
        Alarm {
            kind: "stall_alarm",
            alarm: incident.kind,
            state,
            member: member.then(|| incident.subject.clone()),
            name: member.then(|| group.display_name(&incident.subject).to_string()),
            step: (!member).then(|| incident.subject.clone()),
            since: incident
                .since
                .with_timezone(&zone)
                .format("%Y-%m-%d %H:%M")
                .to_string(),
            threshold: if member {
                group.alarms.stalled_after_hours
            } else {
                group.alarms.failed_runs
            },
            failed_runs: (!member).then_some(incident.failed_runs),
            ledger_key: incident.ledger_key(state),
            follows: (state == AlarmState::Cleared)
                .then(|| incident.ledger_key(AlarmState::Opened)),
        }
    }
}

impl Notice for Alarm {
    fn text(&self, markup: &dyn Markup) -> String {
        let since = markup.escape(&self.since);
        match (self.alarm, self.state) {
            (AlarmKind::StalledMember, state) => {
                let name = markup.escape(self.name.as_deref().unwrap_or_default());
                match state {
                    AlarmState::Opened => format!(
                        "No new play from {name} has reached Earshot since {since} ({} hours or \
                         more). If {name} has been listening, their plays are not being collected: \
                         the person who runs Earshot can look into it.",
                        self.threshold
                    ),
                    AlarmState::Cleared => {
                        format!("{name}'s plays are reaching Earshot again.")
                    }
                }
            }
            (AlarmKind::FailingStep, state) => {
                let step = markup.escape(self.step.as_deref().unwrap_or_default());
                match state {
                    AlarmState::Opened => format!(
                        "Earshot's scheduled step {step} has failed {} runs in a row, since {since}. \
                         The person who runs Earshot can look at its logs.",
                        self.failed_runs.unwrap_or_default()
                    ),
                    AlarmState::Cleared => {
                        format!("Earshot's scheduled step {step} runs again.")
                    }
                }
            }
        }
    }

    fn title(&self) -> &'static str {
        match self.state {
            AlarmState::Opened => "Earshot: something stopped",
            AlarmState::Cleared => "Earshot: running again",
        }
    }

    fn tags(&self) -> &'static [&'static str] {
        match self.state {
            AlarmState::Opened => &["warning"],
            AlarmState::Cleared => &["white_check_mark"],
        }
    }

    fn click(&self) -> Option<&str> {
        None
    }

    fn json(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("an alarm serialises")
    }

    fn ledger_key(&self) -> &str {
        &self.ledger_key
    }

    fn follows(&self) -> Option<&str> {
        self.follows.as_deref()
    }
}

/// The incidents the state store holds.
pub async fn incidents(storage: &Storage) -> Result<Vec<Incident>> {
    let mut out = Vec::new();
    for key in storage.list(&layout::alarms_prefix()).await? {
        let bytes = match storage.read_all(&key).await {
            Ok(bytes) => bytes,
            Err(StorageError::NotFound { .. }) => continue,
            Err(e) => return Err(e.into()),
        };
        let incident: Incident = serde_json::from_slice(&bytes)
            .with_context(|| format!("`{}` is not an alarm incident", storage.location(&key)))?;
        if incident.key() != key {
            anyhow::bail!(
                "`{}` holds the incident of `{}`",
                storage.location(&key),
                incident.key()
            );
        }
        out.push(incident);
    }
    Ok(out)
}

/// The connected members at `now`: listed, not gone, and connected to Spotify (an authorisation
/// neither ended nor refused: those get reconnect reminders instead) or holding a listen token.
async fn watched(
    db: &Database,
    storage: &Storage,
    group: &GroupConfig,
    now: DateTime<Utc>,
) -> Result<Vec<Watched>> {
    let left = earshot_core::erasure::departures(storage).await?;
    let mut out = Vec::new();
    for member in &group.members {
        if left.contains_key(&member.id) {
            continue;
        }
        let spotify = match earshot_state::fetch_state::load(storage, &member.id).await? {
            Some(state)
                if member.spotify
                    && state.needs_reauth.is_none()
                    && now < state.authorisation_ends() =>
            {
                Some(state.authorised_at)
            }
            _ => None,
        };
        let token = earshot_state::listen_tokens::read(storage, &member.id)
            .await?
            .map(|t| t.created_at);
        let Some(connected_at) = spotify.into_iter().chain(token).max() else {
            continue;
        };
        out.push(Watched {
            member: member.id.clone(),
            newest_play: earshot_state::newest_plays::newest(db, &member.id).await?,
            connected_at,
        });
    }
    Ok(out)
}

/// `recap --alarms`: find the conditions, open and clear incidents, post what is due, and forget the
/// incidents every destination has been told are over. With `dry_run`, post nothing and write nothing.
pub async fn run(
    db: &Database,
    storage: &Storage,
    group: &GroupConfig,
    zone: Tz,
    now: DateTime<Utc>,
    policy: &Policy,
    dry_run: bool,
) -> Result<(usize, usize)> {
    let members = watched(db, storage, group, now).await?;
    let steps = step_runs::list(storage).await?;
    let found = conditions(&members, &steps, group, now);
    let before = incidents(storage).await?;
    let (write, drop) = update(
        &before,
        &found,
        |member| members.iter().any(|w| w.member == member),
        now,
    );
    let mut current: BTreeMap<String, Incident> =
        before.into_iter().map(|i| (i.key(), i)).collect();
    for incident in &drop {
        info!(incident = %incident.id, "The member is no longer in the group: their alarm is dropped.");
        current.remove(&incident.key());
        if !dry_run {
            storage.delete(&incident.key()).await?;
        }
    }
    for incident in write {
        match incident.cleared_at {
            None => {
                warn!(incident = %incident.id, kind = ?incident.kind, since = %incident.since, "Alarm: an incident opened.")
            }
            Some(_) => {
                info!(incident = %incident.id, kind = ?incident.kind, "Alarm: an incident cleared.")
            }
        }
        if !dry_run {
            let bytes = serde_json::to_vec_pretty(&incident).expect("an incident serialises");
            storage.write(&incident.key(), bytes.into()).await?;
        }
        current.insert(incident.key(), incident);
    }
    let alarms: Vec<Alarm> = current
        .values()
        .map(|incident| Alarm::of(incident, group, zone))
        .collect();
    let notices: Vec<&dyn Notice> = alarms.iter().map(|a| a as &dyn Notice).collect();
    let (done, failed) = crate::post_notices(db, group, &notices, policy, dry_run).await?;
    if dry_run {
        return Ok((done, failed));
    }
    // An incident over, and told as over wherever it was told it began, is forgotten.
    for incident in current.values().filter(|i| i.cleared_at.is_some()) {
        let mut told = true;
        for destination in &group.destinations {
            let opened = crate::posted(db, &incident.ledger_key(AlarmState::Opened), destination)
                .await?
                .is_some();
            let cleared = crate::posted(db, &incident.ledger_key(AlarmState::Cleared), destination)
                .await?
                .is_some();
            told &= cleared || !opened;
        }
        if told {
            storage.delete(&incident.key()).await?;
        }
    }
    Ok((done, failed))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Plain;
    use earshot_core::step_runs::{RunOutcome, StepRun};

    fn at(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    fn group() -> GroupConfig {
        GroupConfig::parse(
            "time_zone = \"Europe/Berlin\"\n[alarms]\nstalled_after_hours = 48\nfailed_runs = 3\n\
             [[members]]\nid = \"ana.mx\"\ndisplay_name = \"Ana *\"\n",
            std::path::Path::new("t.toml"),
        )
        .unwrap()
    }

    fn failing(step: &str, outcomes: &[RunOutcome]) -> StepRuns {
        StepRuns {
            step: step.into(),
            runs: outcomes
                .iter()
                .enumerate()
                .map(|(i, outcome)| StepRun {
                    // Newest first: run 0 is the latest.
                    started_at: at("2026-12-07T10:00:00Z") - Duration::hours(i as i64),
                    duration_ms: 10,
                    outcome: *outcome,
                    rate_limited: 0,
                    spotify_wait_ms: 0,
                    peak_memory_bytes: None,
                    batch_settings: Default::default(),
                })
                .collect(),
            totals: Default::default(),
        }
    }

    #[test]
    fn a_member_stalls_at_the_threshold_from_their_newest_play_or_connection() {
        let group = group();
        let played = at("2026-12-05T10:00:00Z");
        let ana = |newest_play, connected_at| Watched {
            member: "ana.mx".into(),
            newest_play,
            connected_at,
        };
        let old = at("2026-06-01T00:00:00Z");
        let just_under = played + Duration::hours(48) - Duration::seconds(1);
        assert!(conditions(&[ana(Some(played), old)], &[], &group, just_under).is_empty());
        let stalled = conditions(
            &[ana(Some(played), old)],
            &[],
            &group,
            played + Duration::hours(48),
        );
        assert_eq!(stalled.len(), 1);
        assert_eq!(
            (stalled[0].kind, stalled[0].since),
            (AlarmKind::StalledMember, played)
        );
        // Reconnected after the newest play: the clock starts at the connection.
        let reconnected = played + Duration::hours(30);
        assert!(
            conditions(
                &[ana(Some(played), reconnected)],
                &[],
                &group,
                played + Duration::hours(60)
            )
            .is_empty()
        );
        // Never played: from the connection.
        let never = conditions(&[ana(None, old)], &[], &group, old + Duration::hours(48));
        assert_eq!(never[0].since, old);
    }

    #[test]
    fn a_step_fails_at_three_runs_in_a_row_since_the_first_of_them() {
        use RunOutcome::{Failure, Partial, Success};
        let group = group();
        let now = at("2026-12-07T12:00:00Z");
        assert!(
            conditions(
                &[],
                &[failing("export", &[Failure, Failure, Success])],
                &group,
                now
            )
            .is_empty()
        );
        assert!(
            conditions(
                &[],
                &[failing("export", &[Failure, Failure, Partial, Failure])],
                &group,
                now
            )
            .is_empty()
        );
        let found = conditions(
            &[],
            &[failing(
                "export",
                &[Failure, Failure, Failure, Failure, Success],
            )],
            &group,
            now,
        );
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].since, at("2026-12-07T07:00:00Z"));
        assert_eq!(found[0].failed_runs, 4);
    }

    #[test]
    fn an_incident_opens_once_clears_once_and_is_dropped_with_its_member() {
        let now = at("2026-12-07T12:00:00Z");
        let stalled = Condition {
            kind: AlarmKind::StalledMember,
            subject: "ana.mx".into(),
            since: at("2026-12-05T10:00:00Z"),
            failed_runs: 0,
        };
        let everyone = |_: &str| true;
        let (write, drop) = update(&[], std::slice::from_ref(&stalled), everyone, now);
        assert_eq!((write.len(), drop.len()), (1, 0));
        let open = write[0].clone();
        assert_eq!(open.cleared_at, None);
        assert!(!open.id.contains("ana"), "the id names no one");
        // Still stalled, even with a newer (but still old) play: nothing changes.
        let mut later = stalled.clone();
        later.since = at("2026-12-05T11:00:00Z");
        let (write, drop) = update(
            std::slice::from_ref(&open),
            &[later],
            everyone,
            now + Duration::days(1),
        );
        assert!(write.is_empty() && drop.is_empty());
        // Over: cleared, same id.
        let (write, _) = update(
            std::slice::from_ref(&open),
            &[],
            everyone,
            now + Duration::days(2),
        );
        assert_eq!(write.len(), 1);
        assert_eq!(write[0].id, open.id);
        assert_eq!(write[0].cleared_at, Some(now + Duration::days(2)));
        let cleared = write[0].clone();
        // Cleared and stalled again: a new incident, a new id.
        let (write, _) = update(
            std::slice::from_ref(&cleared),
            std::slice::from_ref(&stalled),
            everyone,
            now + Duration::days(3),
        );
        assert_eq!(write.len(), 1);
        assert_ne!(write[0].id, open.id);
        assert_eq!(write[0].cleared_at, None);
        // Gone from the group: dropped, no message.
        let (write, drop) = update(std::slice::from_ref(&open), &[], |_| false, now);
        assert!(write.is_empty());
        assert_eq!(drop, [open]);
    }

    #[test]
    fn messages_name_the_member_or_step_escaped_and_cleared_follows_opened() {
        let group = group();
        let zone: Tz = "Europe/Berlin".parse().unwrap();
        let stalled = Incident::open(
            &Condition {
                kind: AlarmKind::StalledMember,
                subject: "ana.mx".into(),
                since: at("2026-12-05T10:00:00Z"),
                failed_runs: 0,
            },
            at("2026-12-07T12:00:00Z"),
        );
        let opened = Alarm::of(&stalled, &group, zone);
        let text = opened.text(&Plain);
        assert!(
            text.contains("Ana *")
                && text.contains("2026-12-05 11:00")
                && text.contains("48 hours"),
            "{text}"
        );
        assert_eq!(opened.follows(), None);
        let mut over = stalled.clone();
        over.cleared_at = Some(at("2026-12-08T12:00:00Z"));
        let cleared = Alarm::of(&over, &group, zone);
        assert_eq!(cleared.follows(), Some(opened.ledger_key()));
        assert_ne!(cleared.ledger_key(), opened.ledger_key());
        assert!(cleared.text(&Plain).contains("again"));
        let json = cleared.json();
        assert_eq!(json["state"], "cleared");
        assert_eq!(json["member"], "ana.mx");
        assert!(json.get("step").is_none());

        let step = Incident::open(
            &Condition {
                kind: AlarmKind::FailingStep,
                subject: "gcs_export".into(),
                since: at("2026-12-05T01:00:00Z"),
                failed_runs: 3,
            },
            at("2026-12-07T12:00:00Z"),
        );
        let text = Alarm::of(&step, &group, zone).text(&Plain);
        assert!(
            text.contains("gcs_export") && text.contains("3 runs in a row"),
            "{text}"
        );
    }
}
