//! Each member's authorisation, last play, gaps, import progress and the sources of their plays. Never
//! a token.

use std::sync::Arc;

use axum::extract::State;
use axum::response::Html;
use earshot_state::roster::MemberRow as Listed;
use serde::Serialize;

use crate::app::AppState;
use crate::page::{MemberLink, Names, period_choices};
use crate::render::{Frame, PageError, render};
use crate::urls;

#[derive(Serialize)]
struct StatusPage {
    #[serde(flatten)]
    frame: Frame,
    members: Vec<Row>,
}

#[derive(Serialize)]
struct Row {
    member: MemberLink,
    authorisation: String,
    ends: Option<String>,
    plays: u64,
    imported: u64,
    last: Option<String>,
    gaps: usize,
    import: Option<Import>,
    sources: Vec<Source>,
    listed: bool,
}

#[derive(Serialize)]
struct Source {
    source: &'static str,
    plays: u64,
    last: Option<String>,
}

#[derive(Serialize)]
struct Import {
    plays: u64,
    set_aside: u64,
    enriched: u64,
    to_enrich: u64,
}

/// The status page.
pub async fn page(State(state): State<Arc<AppState>>) -> Result<Html<String>, PageError> {
    let runs = earshot_metrics::runs::listed(&state.stores.db).await?;
    let names = Names::read(&state).await?;
    let zone = state.stores.group.zone().map_err(|e| anyhow::anyhow!(e))?;
    let listed = earshot_state::roster::list(&state.stores, state.clock.now()).await?;
    let local = |t: &str| {
        chrono::DateTime::parse_from_rfc3339(t)
            .ok()
            .map(|t| t.with_timezone(&zone).format("%Y-%m-%d %H:%M").to_string())
    };
    let row = |m: &Listed| Row {
        member: MemberLink {
            id: m.member.clone(),
            name: m.name.clone(),
            href: urls::member(&m.member, None),
        },
        authorisation: m.authorisation.clone(),
        ends: m
            .authorisation_ends
            .map(|t| t.with_timezone(&zone).format("%Y-%m-%d").to_string()),
        plays: m.plays,
        imported: m.imported_plays,
        last: m.last_play.as_deref().and_then(local),
        gaps: m.gaps,
        import: m.import.as_ref().map(|i| Import {
            plays: i.plays,
            set_aside: i.set_aside,
            enriched: i.tracks_enriched,
            to_enrich: i.tracks_to_enrich,
        }),
        sources: m
            .sources
            .iter()
            .map(|s| Source {
                source: s.source,
                plays: s.plays,
                last: s.last_play.as_deref().and_then(local),
            })
            .collect(),
        listed: m.in_config,
    };
    let scheduled = runs
        .iter()
        .find(|r| r.kind == earshot_metrics::runs::RUN_SCHEDULED)
        .map(|r| r.run.clone());
    let frame = Frame {
        periods: Some(period_choices(&runs, None)),
        run: scheduled,
        ..names.frame(&state, "Status", None)
    };
    render(
        "status.html",
        &StatusPage {
            frame,
            members: listed.iter().map(row).collect(),
        },
    )
}
