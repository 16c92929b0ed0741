//! Reconnect reminders, where the group talks (`recap --reminders`, run daily).
//!
//! Spotify ends every authorisation 6 months after it was given, and refreshing does not extend it
//! (`../shared/spotify/`'s 2026 rules). A friend whose authorisation ends stops being fetched, and a log
//! line is not where friends look. So, a week before a friend's authorisation ends
//! ([`REMIND_DAYS_BEFORE`]), and again once it has ended, the group's destinations get one short
//! message naming the friend, the day and where to reconnect: `<dashboard_url>/connect` ("Sign in with
//! Spotify"), or, without a dashboard URL, to ask the operator.
//!
//! Each message goes once per friend, authorisation and destination: the posts ledger
//! (`recap_posts`, as the weekly recap) records it under a key made of the kind and a hash of the
//! member and the authorisation's start, so a re-run posts nothing, a failed destination is posted by
//! the next run, a new authorisation gets its own reminders, and the ledger names no one. A member
//! who left the group, or whom the config no longer lists, gets none.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use earshot_core::GroupConfig;
use earshot_state::fetch_state::MemberState;
use serde::Serialize;
use sha2::{Digest as _, Sha256};

use crate::formats::Notice;
use crate::message::Markup;

/// How many days before the end the first reminder goes.
pub const REMIND_DAYS_BEFORE: i64 = 7;

/// Which reminder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Due {
    /// The authorisation ends within [`REMIND_DAYS_BEFORE`] days.
    EndsSoon,
    /// It has ended.
    Ended,
}

impl Due {
    fn as_str(self) -> &'static str {
        match self {
            Due::EndsSoon => "ends-soon",
            Due::Ended => "ended",
        }
    }
}

/// One reminder to post.
#[derive(Debug, Clone, Serialize)]
pub struct Reminder {
    /// What this is, for a generic webhook.
    pub kind: &'static str,
    /// The member (Spotify id).
    pub member: String,
    /// Their display name.
    pub name: String,
    /// Which reminder.
    pub due: Due,
    /// The day Spotify ends (or ended) the authorisation, in the group's zone (`YYYY-MM-DD`).
    pub ends_on: String,
    /// Where they reconnect (`<dashboard_url>/connect`), when the config gives a dashboard URL.
    pub connect_url: Option<String>,
    /// The posts ledger's period key: the kind and a hash of the member and the authorisation.
    #[serde(skip)]
    pub ledger_key: String,
}

/// `<dashboard_url>/connect`, when the config gives a dashboard URL.
pub fn connect_url(group: &GroupConfig) -> Option<String> {
    group
        .dashboard_url
        .as_deref()
        .map(|base| format!("{}/connect", base.trim_end_matches('/')))
}

/// The reminders due at `now`: for each member the config lists who has not left, and whose
/// authorisation ends within [`REMIND_DAYS_BEFORE`] days or has ended.
pub fn due(
    states: &[MemberState],
    group: &GroupConfig,
    left: &BTreeMap<String, DateTime<Utc>>,
    zone: chrono_tz::Tz,
    now: DateTime<Utc>,
) -> Vec<Reminder> {
    let mut out = Vec::new();
    for state in states {
        let Some(listed) = group.member(&state.member) else {
            continue;
        };
        if left.contains_key(&state.member) {
            continue;
        }
        let ends = state.authorisation_ends();
        let due = if now >= ends {
            Due::Ended
        } else if ends - now <= Duration::days(REMIND_DAYS_BEFORE) {
            Due::EndsSoon
        } else {
            continue;
        };
        let grant = Sha256::digest(
            format!(
                "earshot reconnect|{}|{}",
                state.member,
                state.authorised_at.to_rfc3339()
            )
            .as_bytes(),
        );
        let grant = earshot_state::sessions::hex(&grant[..8]);
        out.push(Reminder {
            kind: "reconnect_reminder",
            member: state.member.clone(),
            name: listed.display_name.clone(),
            due,
            ends_on: ends.with_timezone(&zone).format("%Y-%m-%d").to_string(),
            connect_url: connect_url(group),
            ledger_key: format!("reconnect-{}-{grant}", due.as_str()),
        });
    }
    out
}

impl Notice for Reminder {
    /// The message in `markup`: the friend, the day, and where to reconnect.
    fn text(&self, markup: &dyn Markup) -> String {
        let name = markup.escape(&self.name);
        let day = markup.escape(&self.ends_on);
        let what = match self.due {
            Due::EndsSoon => format!(
                "{name}'s Spotify connection to Earshot ends on {day}: after that, their plays are \
                 no longer collected."
            ),
            Due::Ended => format!(
                "{name}'s Spotify connection to Earshot ended on {day}: their plays are no longer \
                 collected."
            ),
        };
        let how = match &self.connect_url {
            Some(url) => format!(
                "{name} reconnects by signing in with Spotify at {}",
                markup.link(&markup.escape(url), url)
            ),
            None => format!("{name} asks the person who runs Earshot to reconnect them."),
        };
        format!("{what} {how}")
    }

    fn title(&self) -> &'static str {
        "Reconnect to Earshot"
    }

    fn tags(&self) -> &'static [&'static str] {
        &["warning"]
    }

    fn click(&self) -> Option<&str> {
        self.connect_url.as_deref()
    }

    fn json(&self) -> serde_json::Value {
        serde_json::to_value(self).expect("a reminder serialises")
    }

    fn ledger_key(&self) -> &str {
        &self.ledger_key
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::message::Plain;

    fn state(member: &str, authorised_at: DateTime<Utc>) -> MemberState {
        MemberState {
            member: member.into(),
            display_name: member.into(),
            client_id: "app".into(),
            authorised_at,
            needs_reauth: None,
            cursor_after_ms: None,
            last_play_at: None,
            last_fetch_at: None,
            gaps: Vec::new(),
        }
    }

    #[test]
    fn a_reminder_a_week_before_and_one_after_the_end_each_keyed_by_the_grant() {
        let group = GroupConfig::parse(
            "name = \"crew\"\ntime_zone = \"Europe/Berlin\"\ndashboard_url = \"https://e.example/g/crew/\"\n\
             [[members]]\nid = \"ana.mx\"\ndisplay_name = \"Ana\"\n\
             [[members]]\nid = \"ben\"\ndisplay_name = \"Ben\"\n",
            std::path::Path::new("t.toml"),
        )
        .unwrap();
        let zone: chrono_tz::Tz = "Europe/Berlin".parse().unwrap();
        let authorised = DateTime::parse_from_rfc3339("2026-06-10T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let ends = authorised
            .checked_add_months(chrono::Months::new(6))
            .unwrap();
        let states = [state("ana.mx", authorised), state("stranger", authorised)];
        let none = BTreeMap::new();

        assert!(due(&states, &group, &none, zone, ends - Duration::days(8)).is_empty());
        let soon = due(&states, &group, &none, zone, ends - Duration::days(7));
        assert_eq!(soon.len(), 1, "only the listed member: {soon:?}");
        assert_eq!(soon[0].due, Due::EndsSoon);
        assert_eq!(soon[0].ends_on, "2026-12-10");
        let text = soon[0].text(&Plain);
        assert!(
            text.contains("Ana")
                && text.contains("2026-12-10")
                && text.contains("https://e.example/g/crew/connect"),
            "{text}"
        );
        let ended = due(&states, &group, &none, zone, ends + Duration::hours(1));
        assert_eq!(ended[0].due, Due::Ended);
        assert_ne!(ended[0].ledger_key, soon[0].ledger_key);
        assert!(
            !ended[0].ledger_key.contains("ana"),
            "the ledger names no one"
        );
        // A new grant: new keys.
        let renewed = [state("ana.mx", authorised + Duration::days(1))];
        let again = due(
            &renewed,
            &group,
            &none,
            zone,
            ends + Duration::days(1) - Duration::days(3),
        );
        assert_eq!(again[0].due, Due::EndsSoon);
        assert_ne!(again[0].ledger_key, soon[0].ledger_key);
        // Left: nothing.
        let left = BTreeMap::from([("ana.mx".to_string(), authorised)]);
        assert!(due(&states, &group, &left, zone, ends).is_empty());
        // Without a dashboard URL: ask the operator.
        let mut bare = group.clone();
        bare.dashboard_url = None;
        let text = due(&states, &bare, &none, zone, ends)[0].text(&Plain);
        assert!(text.contains("asks the person who runs Earshot"), "{text}");
    }
}
