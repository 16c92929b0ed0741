//! The weekly recap as people read it: who listened most, the group's song of the week, the closest
//! taste, each friend's discovery, and a link to the dashboard's recap page. Read from the period run
//! `analytics --period <week>` stored (`recap_members`, `recap_discovered`, `recap_group`).
//!
//! [`WeeklyRecap`] is also the generic webhook's payload: its JSON is documented in docs/recap.md
//! (`schema` names its version).

use anyhow::{Context as _, Result};
use earshot_core::GroupConfig;
use earshot_core::history::SpokenKind;
use earshot_core::period::{self, Period};
use earshot_metrics::col;
use earshot_metrics::rows::{RecapDiscovered, RecapGroup, RecapMember, ShowMinutes};
use earshot_metrics::store::{self, Select};
use mongodb::Database;
use mongodb::bson::doc;
use serde::Serialize;

/// The version of the recap's JSON.
pub const SCHEMA: &str = "earshot.weekly-recap.v1";

/// One week of the group, ready to post.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WeeklyRecap {
    /// [`SCHEMA`].
    pub schema: &'static str,
    /// The group's name.
    pub group: String,
    /// The ISO week, `2024-W44`.
    pub period: String,
    /// Its first local day (a Monday), `YYYY-MM-DD`.
    pub first_day: String,
    /// Its last local day (a Sunday), `YYYY-MM-DD`.
    pub last_day: String,
    /// The group's time zone, in which the days are counted.
    pub time_zone: String,
    /// The member with the most minutes (ties: the smaller id). None in a week without plays.
    pub listened_most: Option<Listener>,
    /// The track most friends played (then most plays).
    pub song_of_the_week: Option<Song>,
    /// The pair whose artists overlap most.
    pub closest_taste: Option<Closest>,
    /// The podcast the group listened to most that week (from imported histories; often none).
    pub podcast_of_the_week: Option<Podcast>,
    /// Every member who played that week, most minutes first.
    pub members: Vec<MemberWeek>,
    /// The dashboard's recap page of the week, when the config gives `dashboard_url`.
    pub dashboard_url: Option<String>,
    /// The message as plain text (what a chat shows).
    pub text: String,
}

/// A member and their week's listening.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Listener {
    /// Spotify id.
    pub member: String,
    /// Display name.
    pub name: String,
    /// Minutes listened, rounded.
    pub minutes: i64,
    /// Plays.
    pub plays: i64,
}

/// The group's song of the week.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Song {
    /// The track's key (its Spotify id, or `local:…`).
    pub track_key: String,
    /// "Artist – Title".
    pub name: String,
    /// How many friends played it.
    pub listeners: i64,
    /// How many times, together.
    pub plays: i64,
}

/// The group's podcast of the week.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Podcast {
    /// The show's name.
    pub show_name: String,
    /// How many friends played an episode.
    pub listeners: i64,
    /// Minutes, together, rounded.
    pub minutes: i64,
}

/// The closest pair.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Closest {
    /// One member (the smaller id).
    pub a: Named,
    /// The other.
    pub b: Named,
    /// Their taste match, 0 to 100, one decimal.
    pub taste_match: f64,
}

/// A member by id and name.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Named {
    /// Spotify id.
    pub member: String,
    /// Display name.
    pub name: String,
}

/// One member's week.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MemberWeek {
    /// Spotify id.
    pub member: String,
    /// Display name.
    pub name: String,
    /// Minutes listened, rounded.
    pub minutes: i64,
    /// Plays.
    pub plays: i64,
    /// Their most played track, "Artist – Title".
    pub top_track: Option<String>,
    /// The artist they first played this week and played most (none: no new artist).
    pub discovery: Option<Discovery>,
}

/// An artist a member discovered.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Discovery {
    /// Spotify artist id.
    pub artist_id: String,
    /// Artist name.
    pub name: String,
    /// Plays this week.
    pub plays: i64,
}

/// The recap of `week`, from its stored period run; an error naming the command to run when there is
/// none. A pair naming a member of `hidden` (who hides from comparisons) is left out.
pub async fn load(
    db: &Database,
    group: &GroupConfig,
    week: Period,
    hidden: &std::collections::BTreeSet<String>,
) -> Result<WeeklyRecap> {
    let runs = earshot_metrics::runs::listed(db).await?;
    let run = earshot_metrics::runs::pick(&runs, Some(week)).with_context(|| {
        format!("no analytics run of {week} is stored: run `analytics --period {week}` first")
    })?;
    let members: Vec<RecapMember> = store::rows(
        db,
        &run.run,
        Select::all().sorted(doc! {col::MINUTES: -1, col::USER_ID: 1}),
    )
    .await?;
    let discovered: Vec<RecapDiscovered> = store::rows(
        db,
        &run.run,
        Select::all().sorted(doc! {col::USER_ID: 1, col::PLAYS: -1, col::ARTIST_ID: 1}),
    )
    .await?;
    let mut chart: Vec<RecapGroup> = store::rows(db, &run.run, Select::all()).await?;
    for row in &mut chart {
        let names_hidden = [&row.closest_a, &row.closest_b]
            .into_iter()
            .any(|m| m.as_ref().is_some_and(|m| hidden.contains(m)));
        if names_hidden {
            row.closest_a = None;
            row.closest_b = None;
            row.closest_taste_match = None;
        }
    }
    let shows: Vec<ShowMinutes> = store::rows(
        db,
        &run.run,
        Select::matching(doc! {col::KIND: SpokenKind::Episode.as_str()}),
    )
    .await?;
    Ok(assemble(
        group,
        week,
        &members,
        &discovered,
        chart.first(),
        &shows,
    ))
}

/// The show with the most minutes across the group (ties: the name first in order).
pub fn podcast_of_the_week(shows: &[ShowMinutes]) -> Option<Podcast> {
    let mut totals: std::collections::BTreeMap<&str, (f64, std::collections::BTreeSet<&str>)> =
        std::collections::BTreeMap::new();
    for row in shows
        .iter()
        .filter(|r| r.kind == SpokenKind::Episode.as_str())
    {
        let total = totals.entry(row.show_name.as_str()).or_default();
        total.0 += row.minutes;
        total.1.insert(row.user_id.as_str());
    }
    let best = totals
        .iter()
        .map(|(_, (minutes, _))| *minutes)
        .fold(f64::NEG_INFINITY, f64::max);
    totals
        .into_iter()
        .find(|(_, (minutes, _))| *minutes == best)
        .map(|(show, (minutes, who))| Podcast {
            show_name: show.to_string(),
            listeners: who.len() as i64,
            minutes: minutes.round() as i64,
        })
}

/// The recap from the period run's rows (`members` most minutes first; `shows` the members'
/// minutes per show).
pub fn assemble(
    group: &GroupConfig,
    week: Period,
    members: &[RecapMember],
    discovered: &[RecapDiscovered],
    chart: Option<&RecapGroup>,
    shows: &[ShowMinutes],
) -> WeeklyRecap {
    let name = |id: &str| group.display_name(id).to_string();
    let day = |d: Option<chrono::NaiveDate>| d.map(|d| d.format("%Y-%m-%d").to_string());
    let first = week.first_day();
    let last = week.end_day().and_then(|d| d.pred_opt());
    let members: Vec<MemberWeek> = members
        .iter()
        .filter(|m| m.plays > 0)
        .map(|m| MemberWeek {
            member: m.user_id.clone(),
            name: name(&m.user_id),
            minutes: m.minutes.round() as i64,
            plays: m.plays,
            top_track: m.top_track_name.clone(),
            // Sorted by member, then most plays: the first of theirs.
            discovery: discovered
                .iter()
                .find(|d| d.user_id == m.user_id)
                .map(|d| Discovery {
                    artist_id: d.artist_id.clone(),
                    name: d.name.clone(),
                    plays: d.plays,
                }),
        })
        .collect();
    let listened_most = members.first().map(|m| Listener {
        member: m.member.clone(),
        name: m.name.clone(),
        minutes: m.minutes,
        plays: m.plays,
    });
    let song_of_the_week = chart.filter(|_| !members.is_empty()).map(|c| Song {
        track_key: c.most_shared_track_key.clone(),
        name: c.most_shared_track_name.clone(),
        listeners: c.most_shared_listeners,
        plays: c.most_shared_plays,
    });
    let closest_taste = chart.and_then(|c| {
        let (a, b, taste) = (
            c.closest_a.as_ref()?,
            c.closest_b.as_ref()?,
            c.closest_taste_match?,
        );
        Some(Closest {
            a: Named {
                member: a.clone(),
                name: name(a),
            },
            b: Named {
                member: b.clone(),
                name: name(b),
            },
            taste_match: (taste * 10.0).round() / 10.0,
        })
    });
    let dashboard_url = group
        .dashboard_url
        .as_ref()
        .map(|base| format!("{}{}", base.trim_end_matches('/'), period::recap_path(week)));
    let mut recap = WeeklyRecap {
        schema: SCHEMA,
        group: group.name.clone(),
        period: week.to_string(),
        first_day: day(first).unwrap_or_default(),
        last_day: day(last).unwrap_or_default(),
        time_zone: group.time_zone.clone(),
        listened_most,
        song_of_the_week,
        closest_taste,
        podcast_of_the_week: podcast_of_the_week(shows),
        members,
        dashboard_url,
        text: String::new(),
    };
    recap.text = render(&recap, &Plain);
    recap
}

/// How a message format writes text: escaping names, emphasis, links.
pub trait Markup {
    /// `text` as literal text of this format.
    fn escape(&self, text: &str) -> String;
    /// `label` emphasised.
    fn strong(&self, label: &str) -> String;
    /// A link to `url` reading `label`.
    fn link(&self, label: &str, url: &str) -> String;
}

/// Plain text: nothing to escape.
pub struct Plain;

impl Markup for Plain {
    fn escape(&self, text: &str) -> String {
        text.to_string()
    }
    fn strong(&self, label: &str) -> String {
        label.to_string()
    }
    fn link(&self, label: &str, url: &str) -> String {
        format!("{label}: {url}")
    }
}

impl WeeklyRecap {
    /// "fixture-group · week 44 of 2024".
    pub fn title(&self) -> String {
        let label = self
            .period
            .parse::<Period>()
            .map_or_else(|_| self.period.clone(), |p| p.label());
        format!("{} · {label}", self.group)
    }

    /// "28 Oct – 3 Nov 2024 (America/Los_Angeles)".
    pub fn dates(&self) -> String {
        let parse = |d: &str| chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").ok();
        match (parse(&self.first_day), parse(&self.last_day)) {
            (Some(first), Some(last)) => format!(
                "{} – {} ({})",
                first.format("%-d %b"),
                last.format("%-d %b %Y"),
                self.time_zone
            ),
            _ => self.time_zone.clone(),
        }
    }

    /// Each friend's discovery, "Ana: Artist".
    pub fn discoveries(&self, markup: &dyn Markup) -> Vec<String> {
        self.members
            .iter()
            .filter_map(|m| {
                let d = m.discovery.as_ref()?;
                Some(format!(
                    "{}: {}",
                    markup.escape(&m.name),
                    markup.escape(&d.name)
                ))
            })
            .collect()
    }

    /// Who listened most, the song of the week, the closest taste, the podcast of the week, in a
    /// format's markup (or that the week was quiet).
    pub fn highlights(&self, markup: &dyn Markup) -> Vec<String> {
        let mut lines = Vec::new();
        let Some(most) = &self.listened_most else {
            lines.push("A quiet week: nobody in the group played anything.".to_string());
            return lines;
        };
        lines.push(format!(
            "{} {}, {} min ({} plays)",
            markup.strong("Listened most:"),
            markup.escape(&most.name),
            most.minutes,
            most.plays
        ));
        if let Some(song) = &self.song_of_the_week {
            lines.push(format!(
                "{} {} ({}, {} plays)",
                markup.strong("Song of the week:"),
                markup.escape(&song.name),
                friends(song.listeners),
                song.plays
            ));
        }
        if let Some(close) = &self.closest_taste {
            lines.push(format!(
                "{} {} & {} ({}% match)",
                markup.strong("Closest taste:"),
                markup.escape(&close.a.name),
                markup.escape(&close.b.name),
                close.taste_match.round()
            ));
        }
        if let Some(podcast) = &self.podcast_of_the_week {
            lines.push(format!(
                "{} {} ({}, {} min)",
                markup.strong("Podcast of the week:"),
                markup.escape(&podcast.show_name),
                friends(podcast.listeners),
                podcast.minutes
            ));
        }
        lines
    }

    /// The recap's lines (without title and dates), in a format's markup: the highlights, then each
    /// friend's discovery.
    pub fn lines(&self, markup: &dyn Markup) -> Vec<String> {
        let mut lines = self.highlights(markup);
        let discoveries = self.discoveries(markup);
        if !discoveries.is_empty() {
            lines.push(format!(
                "{} {}",
                markup.strong("Discoveries:"),
                discoveries.join(" · ")
            ));
        }
        lines
    }
}

/// "1 friend", "3 friends".
fn friends(n: i64) -> String {
    if n == 1 {
        "1 friend".to_string()
    } else {
        format!("{n} friends")
    }
}

/// The whole message in one format: title, dates, lines, link.
pub fn render(recap: &WeeklyRecap, markup: &dyn Markup) -> String {
    let mut out = vec![
        markup.strong(&markup.escape(&recap.title())),
        markup.escape(&recap.dates()),
    ];
    out.extend(recap.lines(markup));
    if let Some(url) = &recap.dashboard_url {
        out.push(markup.link("The whole recap", url));
    }
    out.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: &str, plays: i64, minutes: f64, top: &str) -> RecapMember {
        RecapMember {
            user_id: id.into(),
            plays,
            minutes,
            top_track_key: Some(format!("{id}-track")),
            top_track_name: Some(top.into()),
            top_track_plays: Some(3),
            top_artist_id: None,
            top_artist_name: None,
            top_artist_plays: None,
            top_album_id: None,
            top_album_name: None,
            top_album_plays: None,
            artists_discovered: 1,
            longest_streak_days: None,
            busiest_day: None,
            busiest_day_plays: None,
            top_listener_of: 0,
        }
    }

    fn group() -> GroupConfig {
        GroupConfig::parse(
            "name = \"crew\"\ndashboard_url = \"https://e.example/\"\n\
             [[members]]\nid = \"ana\"\ndisplay_name = \"Ana\"\n\
             [[members]]\nid = \"ben\"\ndisplay_name = \"Ben\"\n",
            std::path::Path::new("t.toml"),
        )
        .unwrap()
    }

    #[test]
    fn a_week_reads_as_a_short_message_in_the_group_zone() {
        let week: Period = "2024-W44".parse().unwrap();
        let members = [
            member("ben", 40, 130.4, "B – Song"),
            member("ana", 30, 100.0, "A – Tune"),
            member("cy", 0, 0.0, ""),
        ];
        let discovered = [RecapDiscovered {
            user_id: "ana".into(),
            artist_id: "x1".into(),
            name: "New Band".into(),
            plays: 4,
        }];
        let chart = RecapGroup {
            scope: "group".into(),
            most_shared_track_key: "t1".into(),
            most_shared_track_name: "Shared – Song".into(),
            most_shared_listeners: 2,
            most_shared_plays: 9,
            closest_a: Some("ana".into()),
            closest_b: Some("ben".into()),
            closest_taste_match: Some(71.26),
        };
        let recap = assemble(&group(), week, &members, &discovered, Some(&chart), &[]);
        assert_eq!(recap.first_day, "2024-10-28");
        assert_eq!(recap.last_day, "2024-11-03");
        assert_eq!(recap.listened_most.as_ref().unwrap().name, "Ben");
        assert_eq!(recap.members.len(), 2, "a member without plays is left out");
        assert_eq!(recap.closest_taste.as_ref().unwrap().taste_match, 71.3);
        assert_eq!(
            recap.dashboard_url.as_deref(),
            Some("https://e.example/recap?period=2024-W44")
        );
        assert_eq!(
            recap.text,
            "crew · week 44 of 2024\n\
             28 Oct – 3 Nov 2024 (America/Los_Angeles)\n\
             Listened most: Ben, 130 min (40 plays)\n\
             Song of the week: Shared – Song (2 friends, 9 plays)\n\
             Closest taste: Ana & Ben (71% match)\n\
             Discoveries: Ana: New Band\n\
             The whole recap: https://e.example/recap?period=2024-W44"
        );
        let show = |user: &str, name: &str, minutes: f64| ShowMinutes {
            user_id: user.into(),
            kind: "episode".into(),
            show_name: name.into(),
            minutes,
            plays: 1,
        };
        let podcast = podcast_of_the_week(&[
            show("ana", "B Show", 30.0),
            show("ben", "A Show", 20.0),
            show("ana", "A Show", 25.0),
        ])
        .unwrap();
        assert_eq!(
            (
                podcast.show_name.as_str(),
                podcast.listeners,
                podcast.minutes
            ),
            ("A Show", 2, 45)
        );
        assert_eq!(podcast_of_the_week(&[]), None);
        let with_podcasts = assemble(
            &group(),
            week,
            &members,
            &discovered,
            Some(&chart),
            &[show("ana", "A Show", 25.0), show("ben", "A Show", 20.0)],
        );
        assert!(
            with_podcasts
                .text
                .contains("\nPodcast of the week: A Show (2 friends, 45 min)\nDiscoveries: "),
            "{}",
            with_podcasts.text
        );
        let quiet = assemble(&group(), week, &[member("cy", 0, 0.0, "")], &[], None, &[]);
        assert!(quiet.listened_most.is_none());
        assert!(quiet.text.contains("A quiet week"), "{}", quiet.text);
    }
}
