//! Connecting a member: Authorization Code with PKCE (S256) and a random `state`, built by rspotify's
//! `AuthCodePkceSpotify` (see [`crate::api`]).
//!
//! A sign-in is two halves, so that a terminal ([`begin`] then [`finish`] in one process) and a web
//! page (the halves in two requests, the [`Pending`] kept between them) connect the same way:
//!
//! 1. [`begin`]: the authorize URL, with its PKCE challenge and `state`, and the [`Pending`] sign-in
//!    that holds the verifier (secret until the exchange) and the state;
//! 2. [`finish`]: the callback's `state` checked against the pending one ([`code_from_callback`]), the
//!    code exchanged, the account read from `/v1/me`; an account the group config does not list is
//!    refused and nothing of it is stored; the app's 5-member rule is checked
//!    ([`check_app_capacity`]); a member who had left the group (erased themselves) is back
//!    ([`earshot_core::erasure::rejoin`]); the tokens are stored encrypted, and the member's fetch state records
//!    when they authorised (keeping their cursor and gaps from before).
//!
//! Scopes: `user-read-recently-played user-top-read`, nothing more.

use std::collections::HashMap;

use anyhow::{Context as _, Result, anyhow, bail};
use earshot_core::config::MAX_MEMBERS_PER_DEV_APP;
use earshot_core::spotify::PrivateUser;
use earshot_core::{GroupConfig, Storage};
use earshot_state::fetch_state::{self as state, MemberState};

use crate::api::{App, Spotify};
use crate::tokens::TokenStore;

/// Length of the PKCE code verifier (RFC 7636 allows 43 to 128 characters).
pub const PKCE_VERIFIER_LEN: usize = 128;

/// The `code` of a callback URL (or its query), after checking `state`.
pub fn code_from_callback(query: &str, expected_state: &str) -> Result<String> {
    let query = query.split_once('?').map_or(query, |(_, q)| q);
    let params: HashMap<String, String> = url::form_urlencoded::parse(query.as_bytes())
        .into_owned()
        .collect();
    if let Some(error) = params.get("error") {
        bail!("Spotify answered `{error}`: the member did not authorise Earshot");
    }
    match params.get("state") {
        Some(state) if state == expected_state => {}
        Some(_) => bail!(
            "the callback's `state` does not match this sign-in (possible CSRF): refused, nothing stored"
        ),
        None => bail!("the callback has no `state`: refused, nothing stored"),
    }
    params
        .get("code")
        .cloned()
        .ok_or_else(|| anyhow!("the callback has no `code`"))
}

/// A sign-in between its two halves: what [`finish`] needs besides the callback.
#[derive(Clone, PartialEq, Eq)]
pub struct Pending {
    /// The random `state` the callback must carry.
    pub state: String,
    /// The PKCE code verifier (a secret until the exchange).
    pub verifier: String,
    /// The app the member authorises.
    pub client_id: String,
    /// The redirect URI, exactly as sent to Spotify (the exchange must send it again).
    pub redirect_uri: String,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending")
            .field("client_id", &self.client_id)
            .field("redirect_uri", &self.redirect_uri)
            .finish_non_exhaustive()
    }
}

/// The first half: the authorize URL to send the member to, and the pending sign-in.
pub fn begin(spotify: &Spotify, app: &App, redirect_uri: &str) -> Result<(String, Pending)> {
    // rspotify makes the verifier, its S256 challenge and the random `state`.
    let mut client = spotify.pkce_client(&app.client_id, redirect_uri, None);
    let url = client
        .get_authorize_url(Some(PKCE_VERIFIER_LEN))
        .context("building the authorize URL")?;
    let verifier = client
        .verifier
        .clone()
        .ok_or_else(|| anyhow!("rspotify made no PKCE verifier"))?;
    Ok((
        url,
        Pending {
            state: client.oauth.state.clone(),
            verifier,
            client_id: app.client_id.clone(),
            redirect_uri: redirect_uri.to_string(),
        },
    ))
}

/// Why a sign-in was refused, for the page or the terminal that shows it.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// The account signed in is not a member of the group: nothing of it was stored.
    #[error(
        "the Spotify account `{0}` signed in, but the group config lists no member with that id, so \
         nothing was stored. Add it under [[members]] (`id = \"{0}\"`) if they belong to the group, \
         then connect again."
    )]
    NotListed(String),
    /// The group config says the member has no Spotify account (`spotify = false`).
    #[error(
        "the Spotify account `{0}` signed in, but the group config lists that member with \
         `spotify = false`, so nothing was stored. Remove `spotify = false` for them if they now use \
         Spotify, then connect again."
    )]
    NotOnSpotify(String),
    /// The member's app is another one than the sign-in used.
    #[error(
        "`{member}` authorises the app `{expected}` in the group config, not the one this sign-in \
         used: nothing was stored. Connect again with their app."
    )]
    OtherApp {
        /// The member.
        member: String,
        /// The app the group config names for them.
        expected: String,
    },
}

/// Where a grant is stored.
#[derive(Clone, Copy)]
pub struct Stores<'a> {
    /// The group config (who may connect, with which app).
    pub group: &'a GroupConfig,
    /// The storage (fetch state).
    pub storage: &'a Storage,
    /// The encrypted token store.
    pub tokens: &'a TokenStore,
}

/// The second half: check the callback (its query, or the whole URL) against `pending`, exchange the
/// code, and store the grant of a listed member. Returns the member's fetch state.
pub async fn finish(
    spotify: &Spotify,
    stores: Stores<'_>,
    pending: &Pending,
    callback: &str,
) -> Result<MemberState> {
    let code = code_from_callback(callback, &pending.state)?;
    let mut client = spotify.pkce_client(&pending.client_id, &pending.redirect_uri, None);
    client.verifier = Some(pending.verifier.clone());
    let tokens = spotify.exchange_code(&client, &code).await?;
    let Ok(body) = spotify
        .get("(connecting)", "/v1/me", &tokens.access_token)
        .await?
    else {
        bail!("GET /v1/me: the new access token was refused");
    };
    let me: PrivateUser =
        serde_json::from_slice(&body).context("GET /v1/me: invalid response body")?;
    let group = stores.group;
    let Some(member) = group.member(&me.id) else {
        return Err(Refused::NotListed(me.id.to_string()).into());
    };
    if !member.spotify {
        return Err(Refused::NotOnSpotify(me.id.to_string()).into());
    }
    if let Some(expected) = group.app_of(member)
        && expected.client_id != pending.client_id
    {
        return Err(Refused::OtherApp {
            member: me.id.to_string(),
            expected: expected.name.clone(),
        }
        .into());
    }
    check_app_capacity(group, stores.storage, &pending.client_id, &me.id).await?;
    // A friend who erased themselves comes back only this way: by signing in again.
    if earshot_core::erasure::rejoin(stores.storage, &me.id).await? {
        tracing::info!(member = %me.id, "A member who had left signed in again: they are back.");
    }
    stores.tokens.save(&me.id, &tokens).await?;
    let previous = state::load(stores.storage, &me.id).await?;
    let member_state = MemberState {
        member: me.id.to_string(),
        display_name: member.display_name.clone(),
        client_id: pending.client_id.clone(),
        authorised_at: spotify.clock.now(),
        needs_reauth: None,
        cursor_after_ms: previous.as_ref().and_then(|p| p.cursor_after_ms),
        last_play_at: previous.as_ref().and_then(|p| p.last_play_at),
        last_fetch_at: previous.as_ref().and_then(|p| p.last_fetch_at),
        gaps: previous.map(|p| p.gaps).unwrap_or_default(),
    };
    state::save(stores.storage, &member_state).await?;
    tracing::info!(member = %me.id, "Connected a member.");
    Ok(member_state)
}

/// A development-mode app serves at most 5 members (since 2026-02-11): refuse a sixth.
pub async fn check_app_capacity(
    group: &GroupConfig,
    storage: &Storage,
    client_id: &str,
    member: &str,
) -> Result<()> {
    if group
        .apps
        .iter()
        .any(|a| a.client_id == client_id && a.extended_quota)
    {
        return Ok(());
    }
    let mut others: Vec<String> = state::list(storage)
        .await?
        .into_iter()
        .filter(|s| s.client_id == client_id && s.member != member)
        .map(|s| s.member)
        .collect();
    others.sort();
    if others.len() >= MAX_MEMBERS_PER_DEV_APP {
        bail!(
            "the Spotify app `{client_id}` already serves {} members ({}): a development-mode app allows at most {MAX_MEMBERS_PER_DEV_APP} since 2026-02-11, so `{member}` was not connected and nothing was stored. \
             Register another app in the Spotify developer dashboard, add it under [[apps]] in the group config, set `app = \"…\"` for `{member}`, and run `data-fetcher auth --app <name>`; or mark an app with extended quota (`extended_quota = true`).",
            others.len(),
            others.join(", ")
        );
    }
    Ok(())
}
