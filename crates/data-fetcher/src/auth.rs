//! `data-fetcher auth`: a member connects their Spotify account.
//!
//! Authorization Code with PKCE (S256) and a random `state` checked on the callback (CSRF), built by
//! rspotify's `AuthCodePkceSpotify` (see [`crate::spotify`]): a callback
//! with a wrong or missing state is refused and nothing is stored. The redirect goes to a loopback
//! listener on `http://127.0.0.1:<port>/callback` (Spotify refuses `localhost`), or to a configured
//! HTTPS URI whose final URL the member pastes back (`--no-listen`, for headless machines). Scopes:
//! `user-read-recently-played user-top-read`, nothing more. The member's id and display name come from
//! /v1/me; tokens are stored encrypted, and the state records when the member authorised.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow, bail};
use earshot_core::config::MAX_MEMBERS_PER_DEV_APP;
use earshot_core::spotify::PrivateUser;
use earshot_core::{GroupConfig, Storage};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

use crate::spotify::{App, Spotify};
use crate::state::{self, MemberState};
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

/// Where the redirect lands.
#[derive(Debug)]
pub enum Redirect {
    /// A loopback listener Earshot runs (`http://127.0.0.1:<port>/callback`).
    Listen(TcpListener, String),
    /// A URI whose final URL the member pastes on stdin.
    Paste(String),
}

impl Redirect {
    /// The redirect URI sent to Spotify.
    pub fn uri(&self) -> &str {
        match self {
            Redirect::Listen(_, uri) | Redirect::Paste(uri) => uri,
        }
    }
}

/// Accept one callback on the listener; answer the browser; return the query string.
async fn accept_callback(
    listener: &TcpListener,
    expected_state: &str,
    timeout: Duration,
) -> Result<String> {
    let accept = async {
        loop {
            let (mut socket, _) = listener.accept().await?;
            let mut buffer = vec![0u8; 8192];
            let n = socket.read(&mut buffer).await?;
            let request = String::from_utf8_lossy(&buffer[..n]).to_string();
            let target = request.split_whitespace().nth(1).unwrap_or("").to_string();
            if !target.starts_with("/callback") {
                let _ = socket
                    .write_all(
                        b"HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                    )
                    .await;
                continue;
            }
            let verdict = code_from_callback(&target, expected_state);
            let (status, text) = match &verdict {
                Ok(_) => (
                    "200 OK",
                    "Earshot is connected to your Spotify account. You can close this window.",
                ),
                Err(_) => (
                    "400 Bad Request",
                    "Earshot refused this sign-in. Run `data-fetcher auth` again.",
                ),
            };
            let reply = format!(
                "HTTP/1.1 {status}\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}",
                text.len()
            );
            let _ = socket.write_all(reply.as_bytes()).await;
            return anyhow::Ok(target);
        }
    };
    tokio::time::timeout(timeout, accept)
        .await
        .map_err(|_| anyhow!("no callback within {} s", timeout.as_secs()))?
}

/// Connect one member. `show_url` receives the authorize URL (the binary prints it and opens a
/// browser when it can); `paste` reads the final redirect URL in `--no-listen` mode.
#[allow(clippy::too_many_arguments)]
pub async fn connect_member(
    spotify: &Spotify,
    app: &App,
    group: &GroupConfig,
    storage: &Storage,
    store: &TokenStore,
    redirect: Redirect,
    timeout: Duration,
    show_url: impl FnOnce(&str),
    paste: impl FnOnce() -> Result<String>,
) -> Result<MemberState> {
    // rspotify makes the verifier, its S256 challenge and the random `state`, and keeps the verifier
    // for the exchange.
    let mut client = spotify.pkce_client(&app.client_id, redirect.uri(), None);
    show_url(
        &client
            .get_authorize_url(Some(PKCE_VERIFIER_LEN))
            .context("building the authorize URL")?,
    );
    let state = client.oauth.state.clone();
    let callback = match &redirect {
        Redirect::Listen(listener, _) => accept_callback(listener, &state, timeout).await?,
        Redirect::Paste(_) => paste()?,
    };
    let code = code_from_callback(&callback, &state)?;
    let tokens = spotify.exchange_code(&client, &code).await?;
    let Ok(body) = spotify
        .get("(connecting)", "/v1/me", &tokens.access_token)
        .await?
    else {
        bail!("GET /v1/me: the new access token was refused");
    };
    let me: PrivateUser =
        serde_json::from_slice(&body).context("GET /v1/me: invalid response body")?;
    if group.member(&me.id).is_none() {
        bail!(
            "the Spotify account `{}` signed in, but the group config lists no member with that id, so \
             nothing was stored. Add it under [[members]] (`id = \"{}\"`) if they belong to the group, \
             then run `data-fetcher auth` again.",
            me.id,
            me.id
        );
    }
    check_app_capacity(group, storage, &app.client_id, &me.id).await?;
    store.save(&me.id, &tokens).await?;
    let previous = state::load(storage, &me.id).await?;
    let display_name = group
        .member(&me.id)
        .map(|m| m.display_name.clone())
        .or(me.display_name.as_deref().map(str::to_string))
        .unwrap_or_else(|| me.id.to_string());
    let member_state = MemberState {
        member: me.id.to_string(),
        display_name,
        client_id: app.client_id.clone(),
        authorised_at: spotify.clock.now(),
        needs_reauth: None,
        cursor_after_ms: previous.as_ref().and_then(|p| p.cursor_after_ms),
        last_play_at: previous.as_ref().and_then(|p| p.last_play_at),
        last_fetch_at: previous.as_ref().and_then(|p| p.last_fetch_at),
        gaps: previous.map(|p| p.gaps).unwrap_or_default(),
    };
    state::save(storage, &member_state).await?;
    tracing::info!(member = %me.id, "Connected a member.");
    Ok(member_state)
}

/// A development-mode app serves at most 5 members (since 2026-02-11): refuse a sixth.
async fn check_app_capacity(
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
