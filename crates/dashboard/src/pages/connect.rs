//! "Sign in with Spotify": a friend connects, or reconnects, by themselves, and gets a session of
//! their own.
//!
//! The sign-in is [`earshot_spotify::connect`], the same as `data-fetcher auth`: Authorization Code
//! with PKCE, only an account the group config lists, the app the config names for them, the 5-users-
//! per-app rule, and the grant stored encrypted in the same token store. What is the dashboard's own:
//!
//! - `GET /connect` (`?as=<member id>` picks that member's app when the group has several) begins a
//!   sign-in: its verifier and `state` wait in [`DASHBOARD_SIGN_INS`] (the group's database, so any
//!   dashboard process can take the callback) under the SHA-256 of the state, for at most
//!   [`SIGN_IN_TTL`], and the friend is sent to Spotify;
//! - `GET /connect/callback` takes the waiting sign-in of its `state` once (a replayed or expired
//!   `state` finds nothing), finishes it, opens a session that belongs to the member
//!   ([`earshot_state::sessions::Holder::Member`]) and leads to the group's page. An account the
//!   group does not list gets a page saying so, and nothing of it is stored.
//!
//! The redirect URI is exact: `<public URL><group path>/connect/callback`, where the public URL is
//! `--public-url` (HTTPS; plain HTTP only on a loopback IP literal, as Spotify requires).

use std::sync::Arc;

use anyhow::{Context as _, Result, bail};
use axum::extract::{Query, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use earshot_core::GroupConfig;
use earshot_core::mongo::DASHBOARD_SIGN_INS;
use earshot_spotify::api::{App, Spotify};
use earshot_spotify::connect::{self, Pending, Refused};
use earshot_spotify::tokens::TokenStore;
use earshot_state::sessions::{Holder, key_of};
use mongodb::bson::{self, Document, doc};
use serde::Deserialize;

use crate::app::AppState;
use crate::auth::{SESSION_COOKIE, SESSION_TTL};
use crate::render::PageError;
use crate::urls;

/// How long a begun sign-in waits for its callback.
pub const SIGN_IN_TTL: chrono::Duration = chrono::Duration::minutes(10);
/// The most sign-ins waiting at once per group; beyond that, `/connect` answers `503`.
pub const MAX_WAITING_SIGN_INS: u64 = 1_000;

/// What "Sign in with Spotify" needs: the Spotify client, the token store, the public URL.
pub struct SpotifySignIn {
    /// Spotify (accounts and Web API).
    pub spotify: Spotify,
    /// The encrypted token store, the one `data-fetcher` reads.
    pub tokens: TokenStore,
    /// The public URL friends reach the dashboard under (no trailing slash, no path of the group).
    pub public_url: String,
}

impl std::fmt::Debug for SpotifySignIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpotifySignIn")
            .field("public_url", &self.public_url)
            .finish_non_exhaustive()
    }
}

/// Check a public URL for a Spotify redirect: `https://host[:port]`, or `http://` on a loopback IP
/// literal (`127.0.0.1`, `[::1]`), without a path, query or fragment. Returns it without a trailing
/// slash.
pub fn check_public_url(url: &str) -> Result<String> {
    let parsed = url::Url::parse(url).with_context(|| {
        format!("`--public-url {url}` is not a URL (e.g. https://music.example.org)")
    })?;
    let loopback_literal = matches!(
        parsed.host(),
        Some(url::Host::Ipv4(ip)) if ip.is_loopback()
    ) || matches!(parsed.host(), Some(url::Host::Ipv6(ip)) if ip.is_loopback());
    match parsed.scheme() {
        "https" => {}
        "http" if loopback_literal => {}
        _ => bail!(
            "`--public-url {url}`: Spotify accepts a redirect URI over HTTPS only, except on a loopback \
             IP literal (http://127.0.0.1:<port>, never `localhost`)"
        ),
    }
    if parsed.path() != "/" || parsed.query().is_some() || parsed.fragment().is_some() {
        bail!(
            "`--public-url {url}`: give the site's address only (https://music.example.org); the \
             group's path and /connect/callback are added"
        );
    }
    Ok(url.trim_end_matches('/').to_string())
}

impl SpotifySignIn {
    /// The redirect URI of a group served under `base`.
    pub fn redirect_uri(&self, base: &str) -> String {
        format!("{}{base}{}", self.public_url, urls::CONNECT_CALLBACK)
    }
}

/// The app a sign-in uses: the member's (`as`), else the group's only app, else `SPOTIFY_CLIENT_ID`.
fn app_for(group: &GroupConfig, member: Option<&str>) -> Result<App, PageError> {
    if let Some(id) = member {
        let Some(listed) = group.member(id) else {
            return Err(PageError::not_found(
                "Not a member",
                format!("The group has no member `{id}`. Ask whoever runs Earshot to add you."),
            ));
        };
        if let Some(app) = group.app_of(listed) {
            return Ok(App::new(&app.client_id));
        }
    }
    match group.apps.as_slice() {
        [only] => Ok(App::new(&only.client_id)),
        [] => match std::env::var(earshot_core::env::SPOTIFY_CLIENT_ID) {
            Ok(id) if !id.trim().is_empty() => Ok(App::new(id.trim())),
            _ => Err(not_set_up()),
        },
        _ => Err(PageError::new(
            StatusCode::BAD_REQUEST,
            "Which friend are you?",
            "This group uses several Spotify apps: open the link you were sent (it ends in \
             `/connect?as=<your id>`).",
        )),
    }
}

fn not_set_up() -> PageError {
    PageError::not_found(
        "Sign in with Spotify is not set up",
        "This dashboard cannot connect Spotify accounts: whoever runs it sets the token key \
         (EARSHOT_TOKEN_KEY) and the Spotify app (the group config's [[apps]]).",
    )
}

/// Keep a begun sign-in until its callback (or its end).
async fn keep(db: &mongodb::Database, pending: &Pending, now: DateTime<Utc>) -> Result<bool> {
    let waiting = db.collection::<Document>(DASHBOARD_SIGN_INS);
    let now_bson = bson::DateTime::from_millis(now.timestamp_millis());
    waiting
        .delete_many(doc! {"expires_at": {"$lte": now_bson}})
        .await
        .context("deleting ended sign-ins")?;
    if waiting.count_documents(doc! {}).await? >= MAX_WAITING_SIGN_INS {
        return Ok(false);
    }
    let expires = bson::DateTime::from_millis((now + SIGN_IN_TTL).timestamp_millis());
    waiting
        .insert_one(doc! {
            "_id": key_of(&pending.state),
            "verifier": &pending.verifier,
            "client_id": &pending.client_id,
            "redirect_uri": &pending.redirect_uri,
            "expires_at": expires,
        })
        .await
        .context("keeping a sign-in")?;
    Ok(true)
}

/// Take the waiting sign-in of `state`, once: `None` when there is none (replayed, unknown) or it
/// has ended.
async fn take(db: &mongodb::Database, state: &str, now: DateTime<Utc>) -> Result<Option<Pending>> {
    let Some(found) = db
        .collection::<Document>(DASHBOARD_SIGN_INS)
        .find_one_and_delete(doc! {"_id": key_of(state)})
        .await
        .context("taking a sign-in")?
    else {
        return Ok(None);
    };
    let live = found
        .get_datetime("expires_at")
        .is_ok_and(|at| at.timestamp_millis() > now.timestamp_millis());
    let text = |field: &str| found.get_str(field).map(str::to_string).ok();
    Ok(
        match (
            live,
            text("verifier"),
            text("client_id"),
            text("redirect_uri"),
        ) {
            (true, Some(verifier), Some(client_id), Some(redirect_uri)) => Some(Pending {
                state: state.to_string(),
                verifier,
                client_id,
                redirect_uri,
            }),
            _ => None,
        },
    )
}

/// `?as=` of `/connect`.
#[derive(Debug, Deserialize)]
pub struct ConnectQuery {
    /// The member signing in (picks their app when the group has several).
    #[serde(default, rename = "as")]
    pub member: Option<String>,
}

/// `GET /connect`: begin a sign-in and send the friend to Spotify.
pub async fn connect(
    State(state): State<Arc<AppState>>,
    Query(query): Query<ConnectQuery>,
) -> Result<Response, PageError> {
    let Some(sign_in) = &state.spotify else {
        return Err(not_set_up());
    };
    let app = app_for(&state.stores.group, query.member.as_deref())?;
    let redirect_uri = sign_in.redirect_uri(&state.base);
    let (url, pending) = connect::begin(&sign_in.spotify, &app, &redirect_uri)?;
    if !keep(&state.stores.db, &pending, state.clock.now()).await? {
        return Err(PageError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Too many sign-ins at once",
            "Too many sign-ins are waiting for Spotify right now. Try again in a few minutes.",
        ));
    }
    Ok(Redirect::to(&url).into_response())
}

/// `GET /connect/callback`: finish the sign-in of the callback's `state`, once.
pub async fn callback(
    State(state): State<Arc<AppState>>,
    RawQuery(query): RawQuery,
) -> Result<Response, PageError> {
    let Some(sign_in) = &state.spotify else {
        return Err(not_set_up());
    };
    let query = query.unwrap_or_default();
    let given: Option<String> = url::form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned());
    let again = || {
        PageError::new(
            StatusCode::BAD_REQUEST,
            "This sign-in has ended",
            "This sign-in link was already used, has expired or is not ours. Start again with \
             \"Sign in with Spotify\".",
        )
    };
    let Some(given) = given.filter(|s| !s.is_empty() && s.len() <= 256) else {
        return Err(again());
    };
    let now = state.clock.now();
    let Some(pending) = take(&state.stores.db, &given, now).await? else {
        return Err(again());
    };
    let stores = connect::Stores {
        group: &state.stores.group,
        storage: &state.stores.storage,
        tokens: &sign_in.tokens,
    };
    let connected = match connect::finish(&sign_in.spotify, stores, &pending, &query).await {
        Ok(connected) => connected,
        Err(err) => {
            state.sign_ins.failed();
            if let Some(refused) = err.downcast_ref::<Refused>() {
                tracing::warn!(error = %refused, "A Spotify sign-in was refused.");
                let message = match refused {
                    Refused::NotListed(_) => {
                        "This Spotify account is not one of the group's members, so nothing of it \
                         was kept. If you belong to the group, ask whoever runs Earshot to add you."
                            .to_string()
                    }
                    Refused::NotOnSpotify(_) => {
                        "The group lists you as a friend without Spotify, so nothing of this account \
                         was kept. Your plays come from your player's ListenBrainz setting (\"Your \
                         data\" has your listen token); ask whoever runs Earshot if you now use Spotify."
                            .to_string()
                    }
                    other @ Refused::OtherApp { .. } => other.to_string(),
                };
                return Err(PageError::new(
                    StatusCode::FORBIDDEN,
                    "Not a member of this group",
                    message,
                ));
            }
            tracing::warn!(error = %format!("{err:#}"), "A Spotify sign-in failed.");
            return Err(PageError::new(
                StatusCode::BAD_GATEWAY,
                "Spotify sign-in failed",
                "Spotify did not complete the sign-in. Start again with \"Sign in with Spotify\".",
            ));
        }
    };
    // A friend signed in as themselves lands on their own page; without a password (this machine
    // only) there are no sessions, and the group page is open.
    let landing = if state.auth.is_some() {
        urls::href(urls::YOUR_DATA)
    } else {
        urls::group(None)
    };
    let mut response = Redirect::to(&landing).into_response();
    if let Some(auth) = &state.auth {
        let session = state
            .sessions()
            .open(
                Holder::Member {
                    member: connected.member.clone(),
                },
                now,
            )
            .await?;
        let cookie = auth.cookie(
            SESSION_COOKIE,
            &session,
            &urls::group(None),
            Some(SESSION_TTL),
        );
        response.headers_mut().append(
            header::SET_COOKIE,
            HeaderValue::from_str(&cookie).map_err(anyhow::Error::from)?,
        );
    }
    Ok(response)
}
