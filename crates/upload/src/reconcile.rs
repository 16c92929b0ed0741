//! One play, whichever way it arrived: an imported streaming-history play and an API play of the same
//! member and track that match ([`earshot_core::history::matches`]: the stream's start or end within
//! the tolerance of `played_at`) are stored once, as the API's record with the history's `ms_played`.
//!
//! Both orders meet here, file by file, before the file's records are upserted:
//! - a history file arriving after the API plays: a matching history play is not stored; the API
//!   play gains its `ms_played` (an update sent with the file);
//! - API plays arriving after the history: the API record carries the matched play's `ms_played`,
//!   and the history play is deleted once the file's upserts are acknowledged.
//!
//! Matching is one to one, closest first, so a track played twice in a row stays two plays. Every
//! step is idempotent: a run cut short anywhere is finished by the next one (the file is not in the
//! upload ledger yet), which finds the same matches or the work already done. An API record loaded
//! again (`--reload`) keeps the `ms_played` a match gave it.

use std::collections::{BTreeSet, HashMap, HashSet};

use anyhow::{Context as _, Result};
use chrono::{DateTime, Utc};
use earshot_core::history::{MAX_MATCH_STREAM_MS, matches};
use earshot_core::records::PlaySource;
use mongodb::Database;
use mongodb::bson::{self, Bson, Document, doc};

/// What to send once a file's upserts are acknowledged, and what the file merged.
#[derive(Debug, Default)]
pub struct FollowUp {
    /// `update` statements (`$set` of `ms_played` on API plays).
    pub updates: Vec<Document>,
    /// History plays now stored as API plays: delete them.
    pub deletes: Vec<Bson>,
    /// Plays merged by this file (a history play and an API play found to be one, not found before).
    pub merged: u64,
}

impl FollowUp {
    /// Whether there is nothing to send.
    pub fn is_empty(&self) -> bool {
        self.updates.is_empty() && self.deletes.is_empty()
    }

    /// Send the updates and deletes into `collection`.
    pub async fn send(self, db: &Database, collection: &str) -> Result<()> {
        if !self.updates.is_empty() {
            crate::upsert::run_updates(db, collection, self.updates)
                .await
                .with_context(|| {
                    format!("adding `ms_played` to matched plays in `{collection}`")
                })?;
        }
        if !self.deletes.is_empty() {
            db.collection::<Document>(collection)
                .delete_many(
                    doc! {"_id": {"$in": &self.deletes}, "source": PlaySource::History.as_str()},
                )
                .await
                .with_context(|| format!("removing merged history plays from `{collection}`"))?;
            // An enriched history play had links; ArtistTrackLink only ever gains rows, so they go
            // here (the API play's own links come with the next build).
            db.collection::<Document>(earshot_core::mongo::ARTIST_TRACK_LINK)
                .delete_many(doc! {"play_id": {"$in": self.deletes}})
                .await
                .context("removing the links of merged history plays")?;
        }
        Ok(())
    }
}

/// The matching, for one upload run.
#[derive(Debug, Clone)]
pub struct Reconciler {
    db: Database,
    collection: String,
    tolerance_ms: u64,
    /// Whether a member has imported plays stored (only their API files need looking at), learnt per
    /// member on first need from the `(source, user_id, played_at)` index: a `distinct` over every
    /// imported play read them all on the dev server (7.9 s for an hour's upload beside 150k).
    with_history: HashMap<String, bool>,
    /// Whether a member has plays from beyond Spotify stored, learnt the same way.
    with_external: HashMap<String, bool>,
}

/// A stored play that may match: its `_id`, member, track, time and `ms_played`.
#[derive(Debug, Clone)]
struct Stored {
    id: Bson,
    track_id: String,
    played_at: DateTime<Utc>,
    ms_played: Option<u64>,
}

impl Reconciler {
    /// A reconciler for `collection`.
    pub fn new(db: &Database, collection: &str, tolerance_ms: u64) -> Reconciler {
        Reconciler {
            db: db.clone(),
            collection: collection.to_string(),
            tolerance_ms,
            with_history: HashMap::new(),
            with_external: HashMap::new(),
        }
    }

    /// Whether `user` has imported plays stored.
    async fn has_history(&mut self, user: &str) -> Result<bool> {
        if let Some(known) = self.with_history.get(user) {
            return Ok(*known);
        }
        let found = self
            .db
            .collection::<Document>(&self.collection)
            .find_one(doc! {"source": PlaySource::History.as_str(), "user_id": user})
            .projection(doc! {"_id": 1})
            .await
            .with_context(|| {
                format!(
                    "looking for `{user}`'s imported plays in `{}`",
                    self.collection
                )
            })?
            .is_some();
        self.with_history.insert(user.to_string(), found);
        Ok(found)
    }

    /// Match one file's documents (all of one source) against the stored plays; the documents left to
    /// upsert stay in `documents`, and what to send after them is returned.
    pub async fn reconcile(&mut self, documents: &mut Vec<Document>) -> Result<FollowUp> {
        let mut follow_up = FollowUp::default();
        let Some(first) = documents.first() else {
            return Ok(follow_up);
        };
        let source = first.get_str("source").unwrap_or_default().to_string();
        let external = PlaySource::ALL
            .iter()
            .any(|s| s.is_external() && s.as_str() == source);
        let mut drop = HashSet::new();
        // Plays from beyond Spotify meet every other source by their recording's names.
        let mut by_user_named: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, d) in documents.iter().enumerate() {
            if let (Ok(user), Ok(_)) = (d.get_str("user_id"), d.get_str(NAME_KEY)) {
                by_user_named.entry(user.to_string()).or_default().push(i);
            }
        }
        for (user, indexes) in by_user_named {
            if external {
                self.with_external.insert(user.clone(), true);
                self.drop_known(&user, documents, &indexes, None, &mut drop)
                    .await?;
            } else if self.has_external(&user).await? {
                self.drop_known(&user, documents, &indexes, Some(()), &mut drop)
                    .await?;
            }
        }
        if external {
            return Ok(retain_undropped(documents, &drop, follow_up));
        }
        let history = source == PlaySource::History.as_str();
        let mut by_user: HashMap<String, Vec<usize>> = HashMap::new();
        for (i, d) in documents.iter().enumerate() {
            if let (Ok(user), Ok(_)) = (d.get_str("user_id"), d.get_str("track_id")) {
                by_user.entry(user.to_string()).or_default().push(i);
            }
        }
        for (user, indexes) in by_user {
            if history {
                self.with_history.insert(user.clone(), true);
                self.history_into_api(&user, documents, &indexes, &mut drop, &mut follow_up)
                    .await?;
            } else if self.has_history(&user).await? {
                self.api_over_history(&user, documents, &indexes, &mut follow_up)
                    .await?;
            }
        }
        Ok(retain_undropped(documents, &drop, follow_up))
    }

    /// Whether `user` has plays from beyond Spotify stored.
    async fn has_external(&mut self, user: &str) -> Result<bool> {
        if let Some(known) = self.with_external.get(user) {
            return Ok(*known);
        }
        let found = self
            .db
            .collection::<Document>(&self.collection)
            .find_one(doc! {"source": {"$in": external_sources()}, "user_id": user})
            .projection(doc! {"_id": 1})
            .await
            .with_context(|| {
                format!(
                    "looking for `{user}`'s plays from beyond Spotify in `{}`",
                    self.collection
                )
            })?
            .is_some();
        self.with_external.insert(user.to_string(), found);
        Ok(found)
    }

    /// Leave out of `documents` the plays of `user` already stored from another source: the same
    /// recording (its `name_key`) within the tolerance, one to one, closest first; whichever source came
    /// first is kept. `against_external` `None`: the documents are from beyond Spotify, matched against
    /// every stored play; `Some`: they are Spotify's, matched against the stored plays from beyond it.
    /// A document already stored (a file loaded again) is never matched with itself.
    async fn drop_known(
        &self,
        user: &str,
        documents: &[Document],
        indexes: &[usize],
        against_external: Option<()>,
        drop: &mut HashSet<usize>,
    ) -> Result<()> {
        let plays: Vec<(usize, &str, DateTime<Utc>, u64)> = indexes
            .iter()
            .filter_map(|&i| {
                let d = &documents[i];
                Some((
                    i,
                    d.get_str(NAME_KEY).ok()?,
                    d.get_datetime("played_at").ok().and_then(chrono_of)?,
                    ms(d.get("duration_ms")).unwrap_or_default(),
                ))
            })
            .collect();
        let Some((from, to)) = span(plays.iter().map(|p| p.2)) else {
            return Ok(());
        };
        let ids: Vec<Bson> = plays
            .iter()
            .filter_map(|p| documents[p.0].get("_id").cloned())
            .collect();
        let names: BTreeSet<&str> = plays.iter().map(|p| p.1).collect();
        let reach = (self.tolerance_ms + MAX_MATCH_STREAM_MS) as i64;
        let mut filter = doc! {
            "user_id": user,
            NAME_KEY: {"$in": names.iter().copied().collect::<Vec<_>>()},
            "played_at": {"$gte": bson_at(from, -reach), "$lte": bson_at(to, reach)},
            "_id": {"$nin": ids},
        };
        if against_external.is_some() {
            filter.insert("source", doc! {"$in": external_sources()});
        }
        let mut cursor = self
            .db
            .collection::<Document>(&self.collection)
            .find(filter)
            .projection(doc! {"_id": 1, NAME_KEY: 1, "played_at": 1, "duration_ms": 1})
            .await
            .with_context(|| format!("reading plays to match in `{}`", self.collection))?;
        let mut stored: Vec<(String, DateTime<Utc>, u64)> = Vec::new();
        while cursor.advance().await? {
            let d = cursor.deserialize_current()?;
            if let (Ok(name), Some(at)) = (
                d.get_str(NAME_KEY),
                d.get_datetime("played_at").ok().and_then(chrono_of),
            ) {
                stored.push((
                    name.to_string(),
                    at,
                    ms(d.get("duration_ms")).unwrap_or_default(),
                ));
            }
        }
        // A listen's time is its start: the stream "ends" its length later, and a Spotify time
        // (start or end) matches either.
        let pairs = match against_external {
            None => closest_pairs(
                plays
                    .iter()
                    .enumerate()
                    .map(|(n, p)| (n, p.1, end_of(p.2, p.3), p.3)),
                stored
                    .iter()
                    .enumerate()
                    .map(|(n, s)| (n, s.0.as_str(), s.1)),
                self.tolerance_ms,
            ),
            Some(()) => closest_pairs(
                stored
                    .iter()
                    .enumerate()
                    .map(|(n, s)| (n, s.0.as_str(), end_of(s.1, s.2), s.2)),
                plays.iter().enumerate().map(|(n, p)| (n, p.1, p.2)),
                self.tolerance_ms,
            )
            .into_iter()
            .map(|(s, p)| (p, s))
            .collect(),
        };
        for (p, _) in pairs {
            drop.insert(plays[p].0);
        }
        Ok(())
    }

    /// History documents of `user` that match stored API plays: not stored, their `ms_played` goes on
    /// the API play.
    async fn history_into_api(
        &self,
        user: &str,
        documents: &[Document],
        indexes: &[usize],
        drop: &mut HashSet<usize>,
        follow_up: &mut FollowUp,
    ) -> Result<()> {
        let plays: Vec<(usize, &str, DateTime<Utc>, u64)> = indexes
            .iter()
            .filter_map(|&i| {
                let d = &documents[i];
                Some((
                    i,
                    d.get_str("track_id").ok()?,
                    d.get_datetime("played_at").ok().and_then(chrono_of)?,
                    ms(d.get("ms_played"))?,
                ))
            })
            .collect();
        let Some((from, to)) = span(plays.iter().map(|p| p.2)) else {
            return Ok(());
        };
        let tracks: BTreeSet<&str> = plays.iter().map(|p| p.1).collect();
        let filter = doc! {
            "user_id": user,
            "source": {"$ne": PlaySource::History.as_str()},
            "track_id": {"$in": tracks.iter().copied().collect::<Vec<_>>()},
            "played_at": {
                "$gte": bson_at(from, -((self.tolerance_ms + MAX_MATCH_STREAM_MS) as i64)),
                "$lte": bson_at(to, (self.tolerance_ms) as i64),
            },
        };
        let api = self.stored(filter).await?;
        let pairs = closest_pairs(
            plays.iter().enumerate().map(|(n, p)| (n, p.1, p.2, p.3)),
            api.iter()
                .enumerate()
                .map(|(n, s)| (n, s.track_id.as_str(), s.played_at)),
            self.tolerance_ms,
        );
        for (h, a) in pairs {
            let (index, _, _, ms_played) = plays[h];
            drop.insert(index);
            // A play the export repeats (or a file loaded again) finds its merge already made.
            if api[a].ms_played != Some(ms_played) {
                follow_up.merged += 1;
                follow_up.updates.push(doc! {
                    "q": {"_id": api[a].id.clone()},
                    "u": {"$set": {"ms_played": ms_played as i64}},
                });
            }
        }
        Ok(())
    }

    /// API documents of `user` (who has imported plays) that match stored history plays: they carry
    /// its `ms_played`, and the history play goes. An API play stored before keeps its `ms_played`.
    async fn api_over_history(
        &self,
        user: &str,
        documents: &mut [Document],
        indexes: &[usize],
        follow_up: &mut FollowUp,
    ) -> Result<()> {
        let plays: Vec<(usize, String, DateTime<Utc>)> = indexes
            .iter()
            .filter_map(|&i| {
                let d = &documents[i];
                Some((
                    i,
                    d.get_str("track_id").ok()?.to_string(),
                    d.get_datetime("played_at").ok().and_then(chrono_of)?,
                ))
            })
            .collect();
        let Some((from, to)) = span(plays.iter().map(|p| p.2)) else {
            return Ok(());
        };
        // What a previous load gave these API plays.
        let ids: Vec<Bson> = plays
            .iter()
            .filter_map(|p| documents[p.0].get("_id").cloned())
            .collect();
        let before: HashMap<String, u64> = self
            .stored(doc! {"_id": {"$in": ids}, "ms_played": {"$ne": Bson::Null}})
            .await?
            .into_iter()
            .filter_map(|s| Some((s.id.as_str()?.to_string(), s.ms_played?)))
            .collect();
        for &(i, _, _) in &plays {
            if let Some(ms_played) = documents[i]
                .get_str("_id")
                .ok()
                .and_then(|id| before.get(id))
            {
                documents[i].insert("ms_played", *ms_played as i64);
            }
        }
        let tracks: BTreeSet<&str> = plays.iter().map(|p| p.1.as_str()).collect();
        let filter = doc! {
            "user_id": user,
            "source": PlaySource::History.as_str(),
            "track_id": {"$in": tracks.iter().copied().collect::<Vec<_>>()},
            "played_at": {
                "$gte": bson_at(from, -((self.tolerance_ms) as i64)),
                "$lte": bson_at(to, (self.tolerance_ms + MAX_MATCH_STREAM_MS) as i64),
            },
        };
        let history = self.stored(filter).await?;
        let pairs = closest_pairs(
            history
                .iter()
                .enumerate()
                .filter_map(|(n, s)| Some((n, s.track_id.as_str(), s.played_at, s.ms_played?))),
            plays
                .iter()
                .enumerate()
                .map(|(n, p)| (n, p.1.as_str(), p.2)),
            self.tolerance_ms,
        );
        for (h, a) in pairs {
            let ms_played = history[h].ms_played.unwrap_or_default();
            documents[plays[a].0].insert("ms_played", ms_played as i64);
            follow_up.deletes.push(history[h].id.clone());
            follow_up.merged += 1;
        }
        Ok(())
    }

    async fn stored(&self, filter: Document) -> Result<Vec<Stored>> {
        let mut cursor = self
            .db
            .collection::<Document>(&self.collection)
            .find(filter)
            .projection(doc! {"_id": 1, "track_id": 1, "played_at": 1, "ms_played": 1})
            .await
            .with_context(|| format!("reading plays to match in `{}`", self.collection))?;
        let mut found = Vec::new();
        while cursor.advance().await? {
            let d = cursor.deserialize_current()?;
            let (Some(id), Ok(track_id), Some(played_at)) = (
                d.get("_id").cloned(),
                d.get_str("track_id"),
                d.get_datetime("played_at").ok().and_then(chrono_of),
            ) else {
                continue;
            };
            found.push(Stored {
                id,
                track_id: track_id.to_string(),
                played_at,
                ms_played: ms(d.get("ms_played")),
            });
        }
        Ok(found)
    }
}

/// The records' field of a recording's names (earshot-core's `TrackFields::name_key`).
const NAME_KEY: &str = "name_key";

fn external_sources() -> Vec<&'static str> {
    PlaySource::ALL
        .iter()
        .filter(|s| s.is_external())
        .map(|s| s.as_str())
        .collect()
}

fn end_of(start: DateTime<Utc>, ms: u64) -> DateTime<Utc> {
    start + chrono::Duration::milliseconds(ms as i64)
}

/// `documents` without the dropped ones.
fn retain_undropped(
    documents: &mut Vec<Document>,
    drop: &HashSet<usize>,
    follow_up: FollowUp,
) -> FollowUp {
    if !drop.is_empty() {
        let mut i = 0;
        documents.retain(|_| {
            let keep = !drop.contains(&i);
            i += 1;
            keep
        });
    }
    follow_up
}

fn chrono_of(at: &bson::DateTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_millis(at.timestamp_millis())
}

/// `at` moved by `offset_ms`, as a BSON date.
fn bson_at(at: DateTime<Utc>, offset_ms: i64) -> bson::DateTime {
    bson::DateTime::from_millis(at.timestamp_millis().saturating_add(offset_ms))
}

fn ms(value: Option<&Bson>) -> Option<u64> {
    value.and_then(earshot_core::mongo::bson_u64)
}

fn span(times: impl Iterator<Item = DateTime<Utc>>) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    times.fold(None, |acc, t| match acc {
        None => Some((t, t)),
        Some((a, b)) => Some((a.min(t), b.max(t))),
    })
}

/// Pairs (history index, API index) of the same track that match, one to one, closest first (ties by
/// time, then index, so the result does not depend on the order plays arrived in).
pub fn closest_pairs<'s>(
    history: impl Iterator<Item = (usize, &'s str, DateTime<Utc>, u64)>,
    api: impl Iterator<Item = (usize, &'s str, DateTime<Utc>)>,
    tolerance_ms: u64,
) -> Vec<(usize, usize)> {
    let mut api_by_track: HashMap<&str, Vec<(usize, DateTime<Utc>)>> = HashMap::new();
    for (n, track, at) in api {
        api_by_track.entry(track).or_default().push((n, at));
    }
    let mut candidates = Vec::new();
    for (h, track, ended, ms_played) in history {
        for &(a, at) in api_by_track.get(track).into_iter().flatten() {
            if let Some(distance) = matches(ended, ms_played, at, tolerance_ms) {
                candidates.push((distance, ended, at, h, a));
            }
        }
    }
    candidates.sort();
    let (mut used_h, mut used_a) = (HashSet::new(), HashSet::new());
    let mut pairs = Vec::new();
    for (_, _, _, h, a) in candidates {
        if !used_h.contains(&h) && !used_a.contains(&a) {
            used_h.insert(h);
            used_a.insert(a);
            pairs.push((h, a));
        }
    }
    pairs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn a_track_played_twice_in_a_row_stays_two_plays() {
        // Two streams of 180 s back to back, ending 07:03:00 and 07:06:00; the API stamped each play's
        // start (07:00:00 and 07:03:00): the first API time is within reach of the first stream's start
        // only, the second of the first stream's end and the second stream's start.
        let history = [
            (0, "t", at("2024-10-21T07:03:00Z"), 180_000),
            (1, "t", at("2024-10-21T07:06:00Z"), 180_000),
        ];
        let api = [
            (0, "t", at("2024-10-21T07:00:00Z")),
            (1, "t", at("2024-10-21T07:03:00Z")),
        ];
        let mut pairs = closest_pairs(history.into_iter(), api.into_iter(), 90_000);
        pairs.sort();
        assert_eq!(pairs, vec![(0, 0), (1, 1)]);
    }

    #[test]
    fn only_the_same_track_within_the_tolerance_matches() {
        let history = [
            (0, "t", at("2024-10-21T07:03:00Z"), 180_000),
            (1, "u", at("2024-10-21T08:00:00Z"), 180_000),
        ];
        let api = [
            (0, "u", at("2024-10-21T07:03:00Z")),
            (1, "u", at("2024-10-21T08:01:31Z")),
            (2, "u", at("2024-10-21T08:01:29Z")),
        ];
        let pairs = closest_pairs(history.into_iter(), api.into_iter(), 90_000);
        assert_eq!(pairs, vec![(1, 2)]);
    }
}
