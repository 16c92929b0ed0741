//! A mock Spotify Web API and accounts service on loopback, speaking Spotify's real formats, status
//! codes and headers (see `../shared/spotify/README.md`).
//!
//! - Accounts: `GET /authorize` (redirects with `code` + `state`, or `error=access_denied`),
//!   `POST /api/token` for `authorization_code` (checks the PKCE verifier against the challenge) and
//!   `refresh_token` (rotating or omitting the refresh token per [`RefreshPolicy`]; `invalid_grant` once
//!   6 months have passed since the member's original authorisation).
//! - Web API: `/v1/me`, `/v1/me/player/recently-played` (`limit` 1..50, `after`/`before` exclusive and
//!   mutually exclusive, cursors as unix-ms strings, only the newest 50 plays reachable),
//!   `/v1/me/top/{tracks,artists}` (`time_range`, `limit`, `offset`).
//! - A clock the test moves ([`MockSpotify::set_now`]): plays appear as it passes their `played_at`,
//!   tokens expire by it. Scriptable faults ([`Fault`]): 429 with `Retry-After` (also hours-long and
//!   `QUOTA_EXCEEDED`), 5xx, 401 expired token, `invalid_grant`, slow and truncated responses.
//! - Development-mode shapes by default (no popularity, markets, followers, label, …); [`Shape::Full`]
//!   serves the older full shapes the shared samples show.

mod routes;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use anyhow::{Context as _, Result, bail};
use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::fixtures::{Listening, MemberListening};

/// The client id of the app the mock registers by default.
pub const DEFAULT_CLIENT_ID: &str = "earshot0test0client0id0000000000";
/// Its secret (a test value, never a real one).
pub const DEFAULT_CLIENT_SECRET: &str = "earshot0test0client0secret000000";

/// Which response shapes to serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Shape {
    /// Today's development-mode shapes: the fields Spotify removed in 2026 are absent.
    #[default]
    DevMode,
    /// The older full shapes, as the shared samples show.
    Full,
}

/// Whether a refresh returns a new refresh token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RefreshPolicy {
    /// Odd refreshes rotate (the old token stops working), even ones omit `refresh_token`.
    #[default]
    Alternate,
    /// Every refresh rotates.
    Rotate,
    /// No refresh returns a refresh token.
    Keep,
}

/// Mock-wide options.
#[derive(Debug, Clone)]
pub struct MockOptions {
    /// Response shapes.
    pub shape: Shape,
    /// Refresh-token rotation.
    pub refresh: RefreshPolicy,
    /// Access-token lifetime in seconds (Spotify: 3600).
    pub access_token_lifetime: i64,
}

impl Default for MockOptions {
    fn default() -> Self {
        MockOptions {
            shape: Shape::DevMode,
            refresh: RefreshPolicy::Alternate,
            access_token_lifetime: 3600,
        }
    }
}

/// An endpoint of the mock, for scripting faults and reading the request log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    /// `GET /authorize`.
    Authorize,
    /// `POST /api/token`.
    Token,
    /// `GET /v1/me`.
    Me,
    /// `GET /v1/me/player/recently-played`.
    RecentlyPlayed,
    /// `GET /v1/me/top/tracks`.
    TopTracks,
    /// `GET /v1/me/top/artists`.
    TopArtists,
    /// `GET /v1/tracks/{id}`: one track (development-mode apps cannot ask for several at once).
    Track,
    /// Anything else (answered 404).
    Other,
}

/// A scripted fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// 429 with `Retry-After: retry_after` seconds; `quota` adds `"reason": "QUOTA_EXCEEDED"`.
    RateLimited {
        /// Seconds in the `Retry-After` header.
        retry_after: u64,
        /// Whether the body says `QUOTA_EXCEEDED`.
        quota: bool,
    },
    /// A 5xx status (500, 502, 503) with Spotify's error body.
    Status(u16),
    /// 401 "The access token expired", whatever the token's real expiry.
    ExpiredToken,
    /// `invalid_grant` from the token endpoint.
    InvalidGrant,
    /// Answer normally after this real-time delay.
    Slow(std::time::Duration),
    /// Answer normally, but cut the JSON body in half.
    Truncated,
}

/// When a fault applies.
#[derive(Debug, Clone)]
pub struct FaultRule {
    /// The endpoint it applies to (`None`: every endpoint).
    pub endpoint: Option<Endpoint>,
    /// The member it applies to (`None`: everyone).
    pub member: Option<String>,
    /// How many matching requests it answers (then it is spent).
    pub times: u32,
    /// What happens.
    pub fault: Fault,
}

impl FaultRule {
    /// A fault for the next `times` requests to `endpoint`, by anyone.
    pub fn new(endpoint: Endpoint, fault: Fault, times: u32) -> FaultRule {
        FaultRule {
            endpoint: Some(endpoint),
            member: None,
            times,
            fault,
        }
    }

    /// Only for this member.
    pub fn for_member(mut self, member: &str) -> FaultRule {
        self.member = Some(member.to_string());
        self
    }
}

/// One request the mock answered.
#[derive(Debug, Clone)]
pub struct RequestRecord {
    /// Which endpoint.
    pub endpoint: Endpoint,
    /// HTTP method.
    pub method: String,
    /// Path and query as sent.
    pub path_and_query: String,
    /// Status answered.
    pub status: u16,
    /// The member the request was for, when known.
    pub member: Option<String>,
    /// The mock clock when it arrived.
    pub at: DateTime<Utc>,
    /// Real time when it arrived.
    pub received: std::time::Instant,
}

pub(crate) struct Client {
    pub(crate) secret: String,
    /// Members allowed to use the app (development mode: at most 5); `None`: anyone.
    pub(crate) allowlist: Option<BTreeSet<String>>,
}

pub(crate) struct CodeGrant {
    pub(crate) client_id: String,
    pub(crate) user_id: String,
    pub(crate) redirect_uri: String,
    pub(crate) challenge: Option<String>,
    pub(crate) scope: String,
    pub(crate) issued_at: DateTime<Utc>,
}

pub(crate) struct AccessGrant {
    pub(crate) user_id: String,
    pub(crate) client_id: String,
    pub(crate) expires_at: DateTime<Utc>,
}

pub(crate) struct RefreshGrant {
    pub(crate) user_id: String,
    pub(crate) client_id: String,
    pub(crate) authorised_at: DateTime<Utc>,
    pub(crate) scope: String,
}

pub(crate) struct MemberData {
    pub(crate) user: Value,
    /// (played_at unix ms, PlayHistory), oldest first.
    pub(crate) plays: Vec<(i64, Value)>,
    pub(crate) top_tracks: BTreeMap<String, Vec<Value>>,
    pub(crate) top_artists: BTreeMap<String, Vec<Value>>,
}

pub(crate) struct State {
    pub(crate) options: MockOptions,
    pub(crate) base_url: String,
    pub(crate) now: DateTime<Utc>,
    pub(crate) members: BTreeMap<String, MemberData>,
    /// Every track the members played or rank, by id (what `GET /v1/tracks/{id}` serves).
    pub(crate) tracks: HashMap<String, Value>,
    pub(crate) clients: HashMap<String, Client>,
    pub(crate) login: Option<String>,
    pub(crate) deny_next: bool,
    pub(crate) codes: HashMap<String, CodeGrant>,
    pub(crate) access: HashMap<String, AccessGrant>,
    pub(crate) refresh: HashMap<String, RefreshGrant>,
    pub(crate) refreshes: u64,
    pub(crate) faults: Vec<FaultRule>,
    pub(crate) log: Vec<RequestRecord>,
    pub(crate) token_counter: u64,
}

impl State {
    pub(crate) fn new_token(&mut self, prefix: &str) -> String {
        self.token_counter += 1;
        let mut rng = crate::rng::Rng::new(0x5EED ^ self.token_counter.wrapping_mul(0x9E37_79B9));
        format!(
            "{prefix}{}{}{}",
            rng.spotify_id(),
            rng.spotify_id(),
            rng.spotify_id()
        )
    }

    /// Take the first fault matching this request, spending one use of it.
    pub(crate) fn take_fault(&mut self, endpoint: Endpoint, member: Option<&str>) -> Option<Fault> {
        let index = self.faults.iter().position(|rule| {
            rule.times > 0
                && rule.endpoint.is_none_or(|e| e == endpoint)
                && rule.member.as_deref().is_none_or(|m| Some(m) == member)
        })?;
        let rule = &mut self.faults[index];
        rule.times -= 1;
        let fault = rule.fault.clone();
        if rule.times == 0 {
            self.faults.remove(index);
        }
        Some(fault)
    }
}

/// A running mock. Dropping it stops the server.
pub struct MockSpotify {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl MockSpotify {
    /// Serve `listening` on a random loopback port.
    pub async fn start(listening: &Listening, options: MockOptions) -> Result<MockSpotify> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("binding the mock Spotify")?;
        let addr = listener.local_addr()?;
        let mut members = BTreeMap::new();
        let mut latest = DateTime::<Utc>::UNIX_EPOCH;
        for member in &listening.members {
            let plays: Vec<(i64, Value)> = member
                .plays
                .iter()
                .map(|p| (MemberListening::played_at(p).timestamp_millis(), p.clone()))
                .collect();
            if let Some(&(ms, _)) = plays.last() {
                latest = latest.max(DateTime::from_timestamp_millis(ms).unwrap_or_default());
            }
            let data = MemberData {
                user: member.user.clone(),
                plays,
                top_tracks: member.top_tracks.clone(),
                top_artists: member.top_artists.clone(),
            };
            members.insert(member.id().to_string(), data);
        }
        let mut tracks = HashMap::new();
        for member in &listening.members {
            let ranked = member.top_tracks.values().flatten();
            for track in member.plays.iter().map(|p| &p["track"]).chain(ranked) {
                if let Some(id) = track["id"].as_str() {
                    tracks
                        .entry(id.to_string())
                        .or_insert_with(|| track.clone());
                }
            }
        }
        let mut clients = HashMap::new();
        let allowlist: BTreeSet<String> = members.keys().take(5).cloned().collect();
        clients.insert(
            DEFAULT_CLIENT_ID.to_string(),
            Client {
                secret: DEFAULT_CLIENT_SECRET.to_string(),
                allowlist: Some(allowlist),
            },
        );
        let state = Arc::new(Mutex::new(State {
            options,
            base_url: format!("http://{addr}"),
            now: latest + chrono::Duration::minutes(1),
            members,
            tracks,
            clients,
            login: None,
            deny_next: false,
            codes: HashMap::new(),
            access: HashMap::new(),
            refresh: HashMap::new(),
            refreshes: 0,
            faults: Vec::new(),
            log: Vec::new(),
            token_counter: 0,
        }));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let app = routes::router(Arc::clone(&state));
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = rx.await;
                })
                .await;
        });
        Ok(MockSpotify {
            addr,
            state,
            shutdown: Some(tx),
        })
    }

    /// Serve the committed fixture group with default options.
    pub async fn start_fixture_group() -> Result<MockSpotify> {
        MockSpotify::start(&Listening::fixture_group()?, MockOptions::default()).await
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// `http://127.0.0.1:<port>`: the base of both the Web API (`/v1/…`) and the accounts service.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The bound address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The mock clock.
    pub fn now(&self) -> DateTime<Utc> {
        self.state().now
    }

    /// Set the mock clock (plays after it are not yet visible; tokens expire by it).
    pub fn set_now(&self, now: DateTime<Utc>) {
        self.state().now = now;
    }

    /// Move the mock clock forward.
    pub fn advance(&self, by: chrono::Duration) {
        self.state().now += by;
    }

    /// The member whose browser session approves the next `/authorize` requests.
    pub fn login_as(&self, user_id: &str) {
        self.state().login = Some(user_id.to_string());
    }

    /// The next `/authorize` is denied by the member (`error=access_denied`).
    pub fn deny_next_authorization(&self) {
        self.state().deny_next = true;
    }

    /// Register another app; `allowlist` lists its users (development mode), `None` for anyone.
    pub fn register_client(&self, client_id: &str, secret: &str, allowlist: Option<&[&str]>) {
        let allowlist = allowlist.map(|ids| ids.iter().map(|s| s.to_string()).collect());
        self.state().clients.insert(
            client_id.to_string(),
            Client {
                secret: secret.to_string(),
                allowlist,
            },
        );
    }

    /// Script a fault.
    pub fn push_fault(&self, rule: FaultRule) {
        self.state().faults.push(rule);
    }

    /// Every request answered so far.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.state().log.clone()
    }

    /// Forget the request log.
    pub fn clear_requests(&self) {
        self.state().log.clear();
    }

    /// Expire every access token now (the next API call answers 401).
    pub fn expire_access_tokens(&self) {
        let mut state = self.state();
        let now = state.now;
        for grant in state.access.values_mut() {
            grant.expires_at = now;
        }
    }

    /// Connect a member without the browser dance: an access and a refresh token as if the member had
    /// authorised `client_id` at `authorised_at`. Returns `(access_token, refresh_token)`.
    pub fn grant(
        &self,
        user_id: &str,
        client_id: &str,
        authorised_at: DateTime<Utc>,
    ) -> Result<(String, String)> {
        let mut state = self.state();
        if !state.members.contains_key(user_id) {
            bail!("the mock has no member `{user_id}`");
        }
        let access = state.new_token("BQ");
        let refresh = state.new_token("AQ");
        let expires_at = state.now + chrono::Duration::seconds(state.options.access_token_lifetime);
        let scope = earshot_core::spotify::SCOPES.join(" ");
        state.access.insert(
            access.clone(),
            AccessGrant {
                user_id: user_id.to_string(),
                client_id: client_id.to_string(),
                expires_at,
            },
        );
        state.refresh.insert(
            refresh.clone(),
            RefreshGrant {
                user_id: user_id.to_string(),
                client_id: client_id.to_string(),
                authorised_at,
                scope,
            },
        );
        Ok((access, refresh))
    }

    /// Act as the member's browser: open `authorize_url` and return the URL the mock redirects to
    /// (the app's redirect URI with `code` and `state`, or an `error`). Fails on a non-redirect answer.
    pub async fn browser_authorize(&self, authorize_url: &str, user_id: &str) -> Result<url::Url> {
        self.login_as(user_id);
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        let response = client
            .get(authorize_url)
            .send()
            .await
            .context("opening the authorize URL")?;
        let status = response.status();
        let location = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(String::from);
        match location {
            Some(location) if status.is_redirection() => Ok(url::Url::parse(&location)?),
            _ => bail!(
                "the authorize page answered {status}: {}",
                response.text().await.unwrap_or_default()
            ),
        }
    }
}

impl Drop for MockSpotify {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}
