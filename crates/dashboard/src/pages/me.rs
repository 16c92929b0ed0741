//! "Your data": the signed-in friend's own page. What Earshot holds about them (counted from the same
//! roster `members list` prints), their Spotify authorisation with its end and a "Reconnect" link, and
//! their export (the same zip `members export` writes, through [`earshot_rights::export`]) and their
//! plays as ListenBrainz listens.
//!
//! Only a session of the friend's own ("Sign in with Spotify") opens it, and it shows only that
//! friend: its paths name nobody, so no id in a URL can reach another friend's data. A guest of the
//! group password gets `403` and the way to sign in as themselves.

use std::sync::Arc;

use anyhow::Context as _;
use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::Serialize;

use crate::app::AppState;
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
            member,
        },
    )
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
    earshot_rights::export::export_to(&state.stores, &member, &path).await?;
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
    if let Err(err) = earshot_rights::export::export_listens_to(&state.stores, &member, &path).await
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
