//! "Your data": the signed-in friend's own page. What Earshot holds about them (counted from the same
//! roster `members list` prints), their Spotify authorisation with its end and a "Reconnect" link, and
//! their export (the same zip `members export` writes, through [`earshot_rights::member_export`]) and their
//! plays as ListenBrainz listens.
//!
//! Two choices are theirs too, each a form carrying the session's CSRF token
//! ([`earshot_state::sessions::form_token`]):
//! - "Hide me from comparisons" ([`earshot_core::consent`]): no pair naming them is shown, stored or
//!   posted, from the next read on (the dashboard) and the next analytics run (the stored answers);
//! - "Erase me": the member id typed back, then the same erase as `members erase`, with the friend
//!   leaving the group ([`earshot_rights::erase::leave`]): nothing fetches them again until they sign
//!   in again. The erase runs on a task of its own, so a browser that goes away does not cut it short.
//!
//! Only a session of the friend's own ("Sign in with Spotify") opens it, and it shows only that
//! friend: its paths name nobody, so no id in a URL can reach another friend's data. A guest of the
//! group password gets `403` and the way to sign in as themselves.

use std::sync::Arc;

use anyhow::Context as _;
use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use serde::Serialize;

use crate::app::AppState;
use crate::auth::{self, SESSION_COOKIE};
use crate::render::{Frame, PageError, render};
use crate::routes::Viewer;
use crate::urls;

#[derive(Serialize)]
struct YourDataPage {
    #[serde(flatten)]
    frame: Frame,
    member: String,
    name: String,
    plays: u64,
    imported: u64,
    first: Option<String>,
    last: Option<String>,
    gaps: usize,
    authorisation: String,
    ends: Option<String>,
    reconnect: String,
    export: String,
    listens: String,
    stores: Vec<Held>,
    hidden: bool,
    comparisons_action: String,
    erase_action: String,
    erase_error: Option<String>,
    /// When the member's listen token was made, if they have one.
    listen_token_since: Option<String>,
    /// A token just made: shown once, on this answer only.
    new_listen_token: Option<String>,
    listen_token_action: String,
    /// The listen API's base URL for a player's ListenBrainz setting.
    listen_api: String,
}

/// What the page shows besides the member's data: a form's error, or a listen token just made.
#[derive(Default)]
struct Shown {
    erase_error: Option<String>,
    new_listen_token: Option<String>,
}

#[derive(Serialize)]
struct ErasedPage {
    #[serde(flatten)]
    frame: Frame,
    member: String,
    found: bool,
    removed: Vec<Held>,
}

/// What one store holds about the member.
#[derive(Serialize)]
struct Held {
    store: String,
    what: String,
}

/// The member of a session of their own, or why not.
fn own(viewer: Option<Extension<Viewer>>) -> Result<String, PageError> {
    viewer.and_then(|Extension(v)| v.member).ok_or_else(|| {
        PageError::new(
            StatusCode::FORBIDDEN,
            "Your data is yours to see",
            "This page shows a friend what Earshot holds about them, so it opens only for a \
                 friend signed in as themselves: sign out, then choose \"Sign in with Spotify\".",
        )
    })
}

/// `GET /me`.
pub async fn page(
    State(state): State<Arc<AppState>>,
    viewer: Option<Extension<Viewer>>,
) -> Result<Html<String>, PageError> {
    let member = own(viewer)?;
    your_data(&state, member, Shown::default()).await
}

/// "Your data" of `member`, with what was wrong with their erase form, if anything.
async fn your_data(
    state: &AppState,
    member: String,
    shown: Shown,
) -> Result<Html<String>, PageError> {
    let Shown {
        erase_error,
        new_listen_token,
    } = shown;
    let now = state.clock.now();
    let rows = earshot_state::roster::list(&state.stores, now).await?;
    let Some(row) = rows.into_iter().find(|r| r.member == member) else {
        return Err(PageError::not_found(
            "Not a member",
            "The group no longer lists you.",
        ));
    };
    let zone = state.stores.group.zone().map_err(|e| anyhow::anyhow!(e))?;
    let mut stores = vec![Held {
        store: "plays".into(),
        what: format!(
            "{} plays ({} from an imported history)",
            row.plays, row.imported_plays
        ),
    }];
    if let Some(import) = &row.import {
        stores.push(Held {
            store: "imported history".into(),
            what: format!(
                "{} plays kept, {} entries set aside",
                import.plays, import.set_aside
            ),
        });
    }
    stores.push(Held {
        store: "Spotify authorisation".into(),
        what: "an encrypted token (never shown), and when you authorised".into(),
    });
    let hidden = earshot_core::consent::hides(&state.stores.storage, &member)
        .await
        .map_err(anyhow::Error::from)?;
    stores.push(Held {
        store: "your choices".into(),
        what: if hidden {
            "hidden from comparisons".into()
        } else {
            "compared with friends".into()
        },
    });
    let listen_token = earshot_state::listen_tokens::read(&state.stores.storage, &member).await?;
    if listen_token.is_some() {
        stores.push(Held {
            store: "listen token".into(),
            what: "its SHA-256 only (the token itself is shown once, when made)".into(),
        });
    }
    let frame = Frame {
        signed_in: true,
        ..Frame::plain("Your data")
    };
    render(
        "me.html",
        &YourDataPage {
            frame,
            name: row.name.clone(),
            plays: row.plays,
            imported: row.imported_plays,
            first: row.first_play.clone(),
            last: row.last_play.clone(),
            gaps: row.gaps,
            authorisation: row.authorisation.clone(),
            ends: row
                .authorisation_ends
                .map(|t| t.with_timezone(&zone).format("%Y-%m-%d").to_string()),
            reconnect: format!(
                "{}?as={}",
                urls::href(urls::CONNECT),
                urls::segment(&member)
            ),
            export: urls::href(urls::YOUR_EXPORT),
            listens: urls::href(urls::YOUR_LISTENS),
            stores,
            hidden,
            comparisons_action: urls::href(urls::YOUR_COMPARISONS),
            erase_action: urls::href(urls::ERASE_ME),
            erase_error,
            listen_token_since: listen_token.map(|t| {
                t.created_at
                    .with_timezone(&zone)
                    .format("%Y-%m-%d")
                    .to_string()
            }),
            new_listen_token,
            listen_token_action: urls::href(urls::YOUR_LISTEN_TOKEN),
            listen_api: format!(
                "{}{}",
                state
                    .stores
                    .group
                    .dashboard_url
                    .as_deref()
                    .map_or("https://<this dashboard's address>", |u| u
                        .trim_end_matches('/')),
                state.base
            ),
            member,
        },
    )
}

/// `POST /me/listen-token`: make the member a new listen token (replacing any they had), shown once
/// on the answer; with `revoke=yes`, remove it.
pub async fn listen_token(
    State(state): State<Arc<AppState>>,
    viewer: Option<Extension<Viewer>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, PageError> {
    let member = own(viewer)?;
    let fields = checked_form(&headers, &body)?;
    let storage = &state.stores.storage;
    if fields.get("revoke").map(String::as_str) == Some("yes") {
        earshot_state::listen_tokens::revoke(storage, &member).await?;
        tracing::info!(member = %member, "A member revoked their listen token.");
        return Ok(Redirect::to(&urls::href(urls::YOUR_DATA)).into_response());
    }
    let token = earshot_state::listen_tokens::create(storage, &member, state.clock.now()).await?;
    tracing::info!(member = %member, "A member made a listen token.");
    let page = your_data(
        &state,
        member,
        Shown {
            new_listen_token: Some(token),
            ..Shown::default()
        },
    )
    .await?;
    // The token is on this answer only: never cached.
    let mut response = page.into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// The fields of a form's post, after checking its CSRF token against the session's cookie.
fn checked_form(
    headers: &HeaderMap,
    body: &[u8],
) -> Result<std::collections::HashMap<String, String>, PageError> {
    let fields: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(body).into_owned().collect();
    let session = auth::cookie_value(headers, SESSION_COOKIE).unwrap_or_default();
    let token = fields.get("csrf").map_or("", String::as_str);
    if !earshot_state::sessions::form_token_valid(&session, token) {
        return Err(PageError::new(
            StatusCode::FORBIDDEN,
            "Not done",
            "This form did not come from your \"Your data\" page. Open the page and use its button.",
        ));
    }
    Ok(fields)
}

/// `POST /me/comparisons`: set or clear "Hide me from comparisons" (`hide=yes` or `hide=no`).
pub async fn comparisons(
    State(state): State<Arc<AppState>>,
    viewer: Option<Extension<Viewer>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, PageError> {
    let member = own(viewer)?;
    let fields = checked_form(&headers, &body)?;
    let hide = match fields.get("hide").map(String::as_str) {
        Some("yes") => true,
        Some("no") => false,
        _ => {
            return Err(PageError::new(
                StatusCode::BAD_REQUEST,
                "Not a choice",
                "The form's `hide` is `yes` or `no`.",
            ));
        }
    };
    earshot_core::consent::set_hidden(&state.stores.storage, &member, hide, state.clock.now())
        .await
        .map_err(anyhow::Error::from)?;
    tracing::info!(member = %member, hide, "A member changed whether they are compared.");
    Ok(Redirect::to(&urls::href(urls::YOUR_DATA)).into_response())
}

/// `POST /me/erase`: with the member id typed back (`confirm`), the friend leaves the group and
/// everything Earshot holds about them is erased; their sessions end with it.
pub async fn erase(
    State(state): State<Arc<AppState>>,
    viewer: Option<Extension<Viewer>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, PageError> {
    let member = own(viewer)?;
    let fields = checked_form(&headers, &body)?;
    if fields.get("confirm").map(|c| c.trim()) != Some(member.as_str()) {
        let page = your_data(
            &state,
            member.clone(),
            Shown {
                erase_error: Some(format!(
                    "Nothing was erased: type your id, {member}, exactly, to confirm."
                )),
                ..Shown::default()
            },
        )
        .await?;
        return Ok((StatusCode::BAD_REQUEST, page).into_response());
    }
    // On a task of its own: a browser that closes the connection does not stop the erase halfway.
    let work = {
        let state = state.clone();
        let member = member.clone();
        tokio::spawn(async move {
            earshot_rights::erase::leave(&state.stores, &member, state.clock.now()).await
        })
    };
    let report = work
        .await
        .map_err(|e| anyhow::anyhow!("the erase stopped: {e}"))??;
    tracing::info!(member = %member, "A member erased themselves and left the group.");
    let page = render(
        "erased.html",
        &ErasedPage {
            frame: Frame::plain("Erased"),
            found: report.found,
            removed: report
                .removed
                .iter()
                .map(|(store, what)| Held {
                    store: store.clone(),
                    what: what.clone(),
                })
                .collect(),
            member,
        },
    )?;
    let mut response = page.into_response();
    if let Some(auth) = &state.auth {
        crate::pages::login::forget_session_cookie(auth, &mut response)?;
    }
    Ok(response)
}

/// A download of `bytes` named `name`.
fn download(bytes: Vec<u8>, name: &str, content_type: &'static str) -> Result<Response, PageError> {
    let mut response = bytes.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&format!("attachment; filename=\"{name}\""))
            .map_err(anyhow::Error::from)?,
    );
    Ok(response)
}

/// A file name of a member id (ids are Spotify's: letters, digits, `.`, `_`, `-`).
fn file_stem(member: &str) -> String {
    member
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// `GET /me/export.zip`: the same zip `members export` writes.
pub async fn export(
    State(state): State<Arc<AppState>>,
    viewer: Option<Extension<Viewer>>,
) -> Result<Response, PageError> {
    let member = own(viewer)?;
    let dir = tempfile::tempdir().context("a temporary folder for the export")?;
    let path = dir.path().join("export.zip");
    earshot_rights::member_export::export_to(&state.stores, &member, &path).await?;
    let bytes = std::fs::read(&path).context("reading the export")?;
    download(
        bytes,
        &format!("earshot-{}.zip", file_stem(&member)),
        "application/zip",
    )
}

/// `GET /me/listens.jsonl`: the member's plays as ListenBrainz listens.
pub async fn listens(
    State(state): State<Arc<AppState>>,
    viewer: Option<Extension<Viewer>>,
) -> Result<Response, PageError> {
    let member = own(viewer)?;
    let dir = tempfile::tempdir().context("a temporary folder for the export")?;
    let path = dir.path().join("listens.jsonl");
    if let Err(err) =
        earshot_rights::member_export::export_listens_to(&state.stores, &member, &path).await
    {
        if format!("{err:#}").contains("holds no plays") {
            return Err(PageError::not_found(
                "No plays yet",
                "Earshot holds no plays of yours yet.",
            ));
        }
        return Err(err.into());
    }
    let bytes = std::fs::read(&path).context("reading the listens")?;
    download(
        bytes,
        &format!("earshot-{}-listens.jsonl", file_stem(&member)),
        "application/x-ndjson",
    )
}
