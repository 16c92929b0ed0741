//! `data-fetcher auth`: a member connects their Spotify account at a terminal.
//!
//! The sign-in itself is [`earshot_spotify::connect`] (PKCE, the `state` check, the group's member
//! list, the 5-users-per-app rule, the encrypted grant), shared with the dashboard's "Sign in with
//! Spotify". What is the terminal's own: the redirect goes to a loopback listener on
//! `http://127.0.0.1:<port>/callback` (Spotify refuses `localhost`), or to a configured HTTPS URI whose
//! final URL the member pastes back (`--no-listen`, for headless machines).

use std::time::Duration;

use anyhow::{Result, anyhow};
use earshot_core::{GroupConfig, Storage};
use earshot_spotify::api::{App, Spotify};
use earshot_spotify::connect::{self, code_from_callback};
use earshot_spotify::tokens::TokenStore;
use earshot_state::fetch_state::MemberState;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

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
    let (url, pending) = connect::begin(spotify, app, redirect.uri())?;
    show_url(&url);
    let callback = match &redirect {
        Redirect::Listen(listener, _) => accept_callback(listener, &pending.state, timeout).await?,
        Redirect::Paste(_) => paste()?,
    };
    let stores = connect::Stores {
        group,
        storage,
        tokens: store,
    };
    connect::finish(spotify, stores, &pending, &callback).await
}
