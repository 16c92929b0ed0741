//! `data-fetcher fetch`: every connected member's new plays and top items, raw pages kept verbatim.
//!
//! Recently played is incremental: `after` = the member's cursor (the newest play already stored), limit
//! 50. The page is written to storage first; only then does the cursor advance, so a crash never skips
//! plays. Spotify keeps only the newest 50 plays: a full page that does not reach back to the cursor may
//! have lost plays, and that window is recorded as a gap and warned about, never silently. Top tracks
//! and top artists: all three time ranges, 50 each. Members are fetched concurrently (bounded); one
//! failing never stops the others; a rate limit beyond the waiting budget stops the run cleanly.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context as _, Result};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use earshot_core::erasure::{self, ErasureGuard};
use earshot_core::layout::{self, RawKind};
use earshot_core::spotify::{
    MAX_LIMIT, RecentlyPlayedPage, TimeRange, TopArtistsPage, TopTracksPage,
};
use earshot_core::{GroupConfig, Storage};
use futures::StreamExt;
use serde::Deserialize;
use tracing::{error, info, warn};

use earshot_spotify::api::{App, Spotify, SpotifyError, needs_refresh};
use earshot_spotify::tokens::{TokenStore, Tokens};
use earshot_state::fetch_state::{self, EXPIRY_WARNING_DAYS, Gap, MemberState};

/// What to fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum What {
    /// New plays since each member's cursor.
    RecentlyPlayed,
    /// Top tracks and top artists, all three time ranges.
    Top,
    /// Both.
    All,
}

/// Everything a fetch needs.
#[derive(Clone)]
pub struct Fetcher {
    /// HTTP to Spotify.
    pub spotify: Spotify,
    /// Raw pages and state.
    pub storage: Storage,
    /// Encrypted tokens.
    pub tokens: TokenStore,
    /// Display names and apps.
    pub group: GroupConfig,
    /// How many members at once.
    pub concurrency: usize,
}

/// How one member's fetch ended.
#[derive(Debug)]
pub enum MemberResult {
    /// Fetched: plays stored, top pages stored.
    Fetched {
        /// New plays stored.
        plays: usize,
        /// Top-item pages stored.
        top_pages: usize,
        /// A gap was found this run.
        gap: Option<Gap>,
    },
    /// Not fetched: the member must reconnect, or was never connected.
    NeedsAuth(String),
    /// Failed (after retries).
    Failed(String),
    /// Not fetched because the run stopped (rate limit beyond the budget).
    Stopped(String),
    /// Erased (`members erase`) while the run was going: nothing of theirs was stored.
    Erased,
}

/// What a store for a member who is being erased, or was erased during the run, fails with.
#[derive(Debug, thiserror::Error)]
#[error("member `{0}` was erased during this run: nothing of theirs is stored")]
pub struct MemberErased(pub String);

/// The whole run.
#[derive(Debug, Default)]
pub struct RunReport {
    /// Per member, in member order.
    pub members: Vec<(String, MemberResult)>,
}

impl RunReport {
    /// 0 all fetched, 3 partial (some failed, or the run stopped early), 1 none fetched.
    pub fn outcome(&self) -> earshot_core::cli::Outcome {
        let ok = self
            .members
            .iter()
            .filter(|(_, r)| matches!(r, MemberResult::Fetched { .. } | MemberResult::Erased))
            .count();
        let stopped = self
            .members
            .iter()
            .any(|(_, r)| matches!(r, MemberResult::Stopped(_)));
        let outcome = earshot_core::cli::Outcome::from_counts(ok, self.members.len() - ok);
        if stopped {
            earshot_core::cli::Outcome::Partial
        } else {
            outcome
        }
    }
}

impl Fetcher {
    /// Fetch `what` for the connected members the group config lists (or only `only`). Refuses while
    /// a member is being erased; a member erased during the run has nothing stored.
    pub async fn run(&self, what: What, only: &[String]) -> Result<RunReport> {
        let guard = ErasureGuard::begin(&self.storage, "data-fetcher fetch").await?;
        let mut members: Vec<MemberState> = fetch_state::list(&self.storage).await?;
        let left = erasure::departures(&self.storage).await?;
        // Only members the group config lists and who have not left: one taken out of it, or who
        // erased themselves, is never fetched again.
        members.retain(|m| {
            let listed = match self.group.member(&m.member) {
                None => {
                    warn!(member = %m.member, "Connected, but not in the group config: not fetched.");
                    false
                }
                Some(c) if !c.spotify => {
                    warn!(member = %m.member, "Connected, but `spotify = false` in the group config: not fetched.");
                    false
                }
                Some(_) => true,
            };
            listed && !left.contains_key(&m.member)
        });
        if !only.is_empty() {
            for wanted in only {
                if let Some(at) = left.get(wanted) {
                    anyhow::bail!(
                        "`--member {wanted}` left the group on {} (erased themselves): they sign in \
                         again to come back",
                        at.format("%Y-%m-%d")
                    );
                }
                if !members.iter().any(|m| &m.member == wanted) {
                    anyhow::bail!(
                        "`--member {wanted}` is not connected: run `data-fetcher auth` for them first"
                    );
                }
            }
            members.retain(|m| only.contains(&m.member));
        }
        for configured in self.group.members.iter().filter(|m| m.spotify) {
            if let Some(at) = left.get(&configured.id) {
                warn!(member = %configured.id, left_at = %at.to_rfc3339(), "Member left the group (erased themselves): not fetched until they sign in again.");
                continue;
            }
            if !members.iter().any(|m| m.member == configured.id) && only.is_empty() {
                warn!(member = %configured.id, "Member in the group config is not connected; run `data-fetcher auth`.");
            }
        }
        let stop = Arc::new(AtomicBool::new(false));
        let results: Vec<(String, MemberResult)> = futures::stream::iter(members)
            .map(|member| {
                let stop = Arc::clone(&stop);
                let guard = guard.clone();
                async move {
                    let id = member.member.clone();
                    if stop.load(Ordering::SeqCst) {
                        return (
                            id,
                            MemberResult::Stopped(
                                "the run stopped on a rate limit before this member".into(),
                            ),
                        );
                    }
                    let result = self.fetch_member(member, what, guard).await;
                    if let MemberResult::Stopped(_) = &result {
                        stop.store(true, Ordering::SeqCst);
                    }
                    (id, result)
                }
            })
            .buffered(self.concurrency.max(1))
            .collect()
            .await;
        Ok(RunReport { members: results })
    }

    async fn fetch_member(
        &self,
        mut member: MemberState,
        what: What,
        guard: ErasureGuard,
    ) -> MemberResult {
        let id = member.member.clone();
        if let Some(reason) = &member.needs_reauth {
            error!(member = %id, reason = %reason, "Member must reconnect (`data-fetcher auth`); not fetched.");
            return MemberResult::NeedsAuth(reason.clone());
        }
        let now = self.spotify.clock.now();
        let days = member.days_left(now);
        if days <= EXPIRY_WARNING_DAYS {
            warn!(member = %id, days_left = days, "Spotify ends this member's authorisation soon: reconnect with `data-fetcher auth` before plays are lost.");
        }
        let mut session = match self.tokens.load(&id).await {
            Ok(Some(tokens)) => Session {
                fetcher: self,
                member: id.clone(),
                app: App::new(&tokens.client_id),
                tokens,
                guard,
            },
            Ok(None) => return MemberResult::NeedsAuth("no stored tokens".into()),
            Err(err) => return MemberResult::Failed(format!("{err:#}")),
        };
        let result = async {
            let (mut plays, mut gap, mut top_pages) = (0, None, 0);
            if matches!(what, What::RecentlyPlayed | What::All) {
                (plays, gap) = session.recently_played(&mut member).await?;
            }
            if matches!(what, What::Top | What::All) {
                top_pages = session.top_items().await?;
            }
            anyhow::Ok(MemberResult::Fetched {
                plays,
                top_pages,
                gap,
            })
        }
        .await;
        match result {
            Ok(done) => {
                if let MemberResult::Fetched {
                    plays, top_pages, ..
                } = &done
                {
                    info!(member = %id, plays, top_pages, "Fetched member.");
                }
                done
            }
            Err(err) if err.downcast_ref::<MemberErased>().is_some() => {
                info!(member = %id, "Erased during this run: nothing of theirs was stored.");
                MemberResult::Erased
            }
            Err(err) => match err.downcast_ref::<SpotifyError>() {
                Some(SpotifyError::NeedsReauth { reason, .. }) => {
                    member.needs_reauth = Some(reason.clone());
                    if let Err(save) = session.save_state(&member).await {
                        error!(member = %id, error = %format!("{save:#}"), "Could not record that the member must reconnect.");
                    }
                    error!(member = %id, error = %err, "Member must reconnect; the others are still fetched.");
                    MemberResult::NeedsAuth(reason.clone())
                }
                Some(spotify) if spotify.stops_run() => {
                    warn!(member = %id, error = %err, "Stopping the run cleanly: cursors are saved, the next scheduled run resumes.");
                    MemberResult::Stopped(format!("{err:#}"))
                }
                _ => {
                    error!(member = %id, error = %format!("{err:#}"), "Fetching the member failed; the others go on.");
                    MemberResult::Failed(format!("{err:#}"))
                }
            },
        }
    }
}

impl Fetcher {
    /// An authenticated session of `member` (stored tokens, refreshed as needed), for requests that
    /// are not a member's own listening (`GET /v1/tracks/{id}`).
    pub(crate) async fn session(
        &self,
        member: &str,
        guard: ErasureGuard,
    ) -> Result<Option<Session<'_>>> {
        let Some(tokens) = self.tokens.load(member).await? else {
            return Ok(None);
        };
        Ok(Some(Session {
            fetcher: self,
            member: member.to_string(),
            app: App::new(&tokens.client_id),
            tokens,
            guard,
        }))
    }
}

/// One member's authenticated requests, refreshing and persisting tokens as needed.
pub(crate) struct Session<'a> {
    fetcher: &'a Fetcher,
    member: String,
    app: App,
    tokens: Tokens,
    /// The run's view of the erasures: nothing is stored for a member being erased.
    guard: ErasureGuard,
}

impl Session<'_> {
    /// Before a store: refuse when the member is being erased, or was erased since the run began
    /// (their fetch state, which only `auth` creates and the erase removes, is gone).
    async fn may_store(&self) -> Result<()> {
        if self
            .guard
            .member_erased(&self.member, &layout::member_state_key(&self.member))
            .await?
        {
            return Err(MemberErased(self.member.clone()).into());
        }
        Ok(())
    }

    /// After a store: an erase that began meanwhile gets what was stored withdrawn.
    async fn withdraw_if_erased(&self, keys: &[String]) -> Result<()> {
        if self.guard.being_erased(&self.member).await? {
            for key in keys {
                self.fetcher.storage.delete(key).await?;
            }
            self.fetcher.tokens.delete(&self.member).await?;
            return Err(MemberErased(self.member.clone()).into());
        }
        Ok(())
    }

    /// Save the member's fetch state, unless they are being erased.
    pub(crate) async fn save_state(&self, member: &MemberState) -> Result<()> {
        self.may_store().await?;
        fetch_state::save(&self.fetcher.storage, member).await?;
        self.withdraw_if_erased(&[layout::member_state_key(&self.member)])
            .await
    }

    async fn refresh(&mut self) -> Result<()> {
        let fresh = self
            .fetcher
            .spotify
            .refresh(&self.member, &self.app, &self.tokens)
            .await?;
        // Save at once: a rotated refresh token replaces the old one, which stops working.
        self.may_store().await?;
        self.fetcher
            .tokens
            .save(&self.member, &fresh)
            .await
            .with_context(|| format!("member `{}`: saving refreshed tokens", self.member))?;
        self.withdraw_if_erased(&[]).await?;
        self.tokens = fresh;
        Ok(())
    }

    /// GET a path; refresh before expiry and once on 401.
    pub(crate) async fn get(&mut self, path: &str) -> Result<Bytes> {
        if needs_refresh(&self.tokens, self.fetcher.spotify.clock.now()) {
            self.refresh().await?;
        }
        for retried in [false, true] {
            match self
                .fetcher
                .spotify
                .get(&self.member, path, &self.tokens.access_token)
                .await?
            {
                Ok(body) => return Ok(body),
                Err(_) if !retried => self.refresh().await?,
                Err(_) => break,
            }
        }
        anyhow::bail!(
            "member `{}`: GET {path}: the access token was refused right after a refresh",
            self.member
        )
    }

    fn parse<'b, T: Deserialize<'b>>(&self, path: &str, body: &'b [u8]) -> Result<T> {
        serde_json::from_slice(body).map_err(|e| {
            SpotifyError::Body {
                member: self.member.clone(),
                endpoint: format!("GET {}", path.split('?').next().unwrap_or(path)),
                detail: e.to_string(),
            }
            .into()
        })
    }

    async fn store(&self, key: &str, body: Bytes) -> Result<()> {
        self.may_store().await?;
        self.fetcher
            .storage
            .write(key, body)
            .await
            .with_context(|| format!("member `{}`: storing `{key}`", self.member))?;
        self.withdraw_if_erased(&[key.to_string()]).await
    }

    /// New plays since the cursor. Returns (plays stored, gap found).
    async fn recently_played(&mut self, member: &mut MemberState) -> Result<(usize, Option<Gap>)> {
        let mut path = format!("/v1/me/player/recently-played?limit={MAX_LIMIT}");
        if let Some(cursor) = member.cursor_after_ms {
            path.push_str(&format!("&after={cursor}"));
        }
        let body = self.get(&path).await?;
        let page: RecentlyPlayedPage = self.parse(&path, &body)?;
        let now = self.fetcher.spotify.clock.now();
        member.last_fetch_at = Some(now);
        let (Some(newest), Some(oldest)) = (
            page.items.iter().map(|p| p.played_at).max(),
            page.items.iter().map(|p| p.played_at).min(),
        ) else {
            self.save_state(member).await?;
            return Ok((0, None));
        };
        let key = layout::raw_key(RawKind::RecentlyPlayed, &self.member, None, now);
        self.store(&key, body.clone()).await?;
        // Only now that the page is stored does the cursor move.
        let gap = detect_gap(member.cursor_after_ms, page.items.len(), oldest, now);
        if let Some(gap) = &gap {
            warn!(member = %self.member, after = %gap.after, before = %gap.before, "More than 50 plays since the last fetch: plays in this window may be lost (fetch more often).");
            member.gaps.push(gap.clone());
        }
        member.cursor_after_ms = Some(
            page.cursors
                .as_ref()
                .and_then(|c| c.after_ms())
                .unwrap_or(newest.timestamp_millis())
                .max(newest.timestamp_millis()),
        );
        member.last_play_at = Some(newest);
        self.save_state(member).await?;
        Ok((page.items.len(), gap))
    }

    /// Top tracks and artists for all three ranges. Returns pages stored.
    async fn top_items(&mut self) -> Result<usize> {
        let mut stored = 0;
        for kind in [RawKind::TopTracks, RawKind::TopArtists] {
            for range in TimeRange::ALL {
                let what = if kind == RawKind::TopTracks {
                    "tracks"
                } else {
                    "artists"
                };
                let path =
                    format!("/v1/me/top/{what}?time_range={range}&limit={MAX_LIMIT}&offset=0");
                let body = self.get(&path).await?;
                if kind == RawKind::TopTracks {
                    self.parse::<TopTracksPage>(&path, &body)?;
                } else {
                    self.parse::<TopArtistsPage>(&path, &body)?;
                }
                let key = layout::raw_key(
                    kind,
                    &self.member,
                    Some(range),
                    self.fetcher.spotify.clock.now(),
                );
                self.store(&key, body).await?;
                stored += 1;
            }
        }
        Ok(stored)
    }
}

/// A full page (50 plays) whose oldest play is newer than the cursor may hide plays in between.
/// Without a cursor (the first fetch) there is nothing to miss: older history was never reachable.
pub fn detect_gap(
    cursor_ms: Option<i64>,
    items: usize,
    oldest: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Option<Gap> {
    let cursor = DateTime::from_timestamp_millis(cursor_ms?)?;
    (items >= MAX_LIMIT as usize && oldest > cursor).then_some(Gap {
        after: cursor,
        before: oldest,
        detected_at: now,
    })
}
