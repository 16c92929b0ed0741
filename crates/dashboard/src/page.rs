//! What every page of a run shares: the run a period picks, the members' names, links to members,
//! tracks and artists, and the frame (`base.html`).

use std::collections::BTreeMap;

use axum::http::StatusCode;
use earshot_core::period::Period;
use earshot_metrics::col;
use earshot_metrics::rows::{MetricRow, TrackListeners};
use earshot_metrics::runs::AnalyticsRun;
use serde::{Deserialize, Serialize};

use crate::app::AppState;
use crate::data;
use crate::render::{Frame, Link, PageError, PeriodChoice};
use crate::urls;
use earshot_metrics::store::Select;

/// `?period=…` of a page.
#[derive(Debug, Deserialize)]
pub struct PeriodQuery {
    /// A named period (`2024`, `2024-10`, `2024-W44`); empty or absent: all time.
    #[serde(default)]
    pub period: Option<String>,
}

impl PeriodQuery {
    /// The period asked for; a `400` page for one that does not parse.
    pub fn period(&self) -> Result<Option<Period>, PageError> {
        match self.period.as_deref().map(str::trim) {
            None | Some("") => Ok(None),
            Some(text) => text.parse::<Period>().map(Some).map_err(|e| {
                PageError::new(StatusCode::BAD_REQUEST, "Not a period", e.to_string())
            }),
        }
    }
}

/// A member's name and page.
#[derive(Debug, Clone, Serialize)]
pub struct MemberLink {
    /// Their id.
    pub id: String,
    /// Their display name.
    pub name: String,
    /// Their page.
    pub href: String,
}

/// The members' display names, and the frame's navigation built from them.
pub struct Names {
    names: BTreeMap<String, String>,
}

impl Names {
    /// The group config's names, else the ones members signed in with.
    pub async fn read(state: &AppState) -> Result<Names, PageError> {
        // A member who left (erased themselves) is not listed, though the config still names them.
        let group =
            earshot_core::erasure::without_departed(&state.stores.storage, &state.stores.group)
                .await
                .map_err(anyhow::Error::from)?;
        Ok(Names {
            names: data::names(&state.stores.db, &group).await?,
        })
    }

    /// A member's display name (their id when they have none).
    pub fn name(&self, id: &str) -> String {
        self.names
            .get(id)
            .cloned()
            .unwrap_or_else(|| id.to_string())
    }

    /// Whether `id` is a member.
    pub fn contains(&self, id: &str) -> bool {
        self.names.contains_key(id)
    }

    /// A frame with every member's page in the navigation.
    pub fn frame(&self, state: &AppState, title: &str, period: Option<Period>) -> Frame {
        Frame {
            group_href: urls::group(period),
            nav: self
                .names
                .iter()
                .map(|(id, name)| Link {
                    name: name.clone(),
                    href: Some(urls::member(id, period)),
                })
                .collect(),
            signed_in: state.auth.is_some(),
            ..Frame::plain(title)
        }
    }
}

/// What every page of a run needs.
pub struct Page<'a> {
    /// The app.
    pub state: &'a AppState,
    /// The run shown.
    pub run: AnalyticsRun,
    /// Every listed run (the period selector, the recap's neighbours).
    pub runs: Vec<AnalyticsRun>,
    /// The period shown (none: all time).
    pub period: Option<Period>,
    /// The members' names.
    pub names: Names,
    /// The group's time zone.
    pub zone: chrono_tz::Tz,
    /// The members who hide from comparisons now ([`earshot_core::consent`]): no row comparing them
    /// with anyone is read, whatever the run stored before they chose it.
    pub hidden: std::collections::BTreeSet<String>,
}

impl<'a> Page<'a> {
    /// The page of the run `query`'s period picks.
    pub async fn read(state: &'a AppState, query: &PeriodQuery) -> Result<Page<'a>, PageError> {
        let period = query.period()?;
        let runs = earshot_metrics::runs::listed(&state.stores.db).await?;
        Page::of(state, runs, period).await
    }

    /// The page of `period`'s run among `runs` (read once per request); a `404` page when there is
    /// none.
    pub async fn of(
        state: &'a AppState,
        runs: Vec<AnalyticsRun>,
        period: Option<Period>,
    ) -> Result<Page<'a>, PageError> {
        let Some(run) = earshot_metrics::runs::pick(&runs, period).cloned() else {
            let message = match period {
                Some(p) => format!(
                    "There are no answers for {} yet. They are computed by `analytics --period {p}`.",
                    p.label()
                ),
                None => "There are no answers yet: the pipeline has not run analytics. Run \
                         `scripts/demo.sh` or the Airflow DAG, then reload."
                    .to_string(),
            };
            return Err(PageError::not_found("No answers yet", message));
        };
        let names = Names::read(state).await?;
        let zone = state.stores.group.zone().map_err(|e| anyhow::anyhow!(e))?;
        let hidden = earshot_core::consent::hidden(&state.stores.storage)
            .await
            .map_err(anyhow::Error::from)?;
        Ok(Page {
            state,
            run,
            runs,
            period,
            names,
            zone,
            hidden,
        })
    }

    /// Rows of `T`'s metric in this run, without the comparisons of a member who hides from them.
    pub async fn rows<T: MetricRow>(&self, mut select: Select) -> Result<Vec<T>, PageError> {
        if let Some(table) = earshot_metrics::table(T::TABLE) {
            select
                .filter
                .extend(table.comparisons_without(&self.hidden));
        }
        Ok(earshot_metrics::store::rows(&self.state.stores.db, &self.run.run, select).await?)
    }

    /// Whether `member` hides from comparisons.
    pub fn hides(&self, member: &str) -> bool {
        self.hidden.contains(member)
    }

    /// The first row of `T`'s metric that `select` picks.
    pub async fn row<T: MetricRow>(&self, select: Select) -> Result<Option<T>, PageError> {
        Ok(self.rows(select.first(1)).await?.into_iter().next())
    }

    /// The names of these tracks, from the group chart's rows (a track the chart lacks is named by
    /// its key).
    pub async fn track_names(&self, keys: &[&str]) -> Result<BTreeMap<String, String>, PageError> {
        let select = Select::matching(mongodb::bson::doc! {col::TRACK_KEY: {"$in": keys}});
        let rows: Vec<TrackListeners> = if keys.is_empty() {
            Vec::new()
        } else {
            self.rows(select).await?
        };
        Ok(rows.into_iter().map(|r| (r.track_key, r.name)).collect())
    }

    /// The names of every track of the run's group chart.
    pub async fn track_names_all(&self) -> Result<BTreeMap<String, String>, PageError> {
        let rows: Vec<TrackListeners> = self.rows(Select::all()).await?;
        Ok(rows.into_iter().map(|r| (r.track_key, r.name)).collect())
    }

    /// A track's name and page, named from `names` (else by its key).
    pub fn named_track(&self, key: &str, names: &BTreeMap<String, String>) -> Link {
        self.track(key, names.get(key).map_or(key, String::as_str))
    }

    /// A member's display name.
    pub fn name(&self, id: &str) -> String {
        self.names.name(id)
    }

    /// A member's name and page (keeping the period).
    pub fn member(&self, id: &str) -> MemberLink {
        MemberLink {
            id: id.to_string(),
            name: self.name(id),
            href: urls::member(id, self.period),
        }
    }

    /// A track's name and page.
    pub fn track(&self, key: &str, name: &str) -> Link {
        Link {
            name: name.to_string(),
            href: Some(urls::track(key, self.period)),
        }
    }

    /// An artist's name and page; no page for an artist without a Spotify id (an imported track not
    /// enriched yet, or removed from Spotify).
    pub fn artist(&self, id: Option<&str>, name: &str) -> Link {
        Link {
            name: name.to_string(),
            href: id
                .filter(|id| !id.is_empty())
                .map(|id| urls::artist(id, self.period)),
        }
    }

    /// Two members' page.
    pub fn pair(&self, a: &str, b: &str) -> String {
        urls::pair(a, b, self.period)
    }

    /// The period's label (`All time` without one).
    pub fn period_label(&self) -> String {
        self.period
            .map_or_else(|| "All time".to_string(), |p| p.label())
    }

    /// The frame of this page: navigation, the period selector, the run.
    pub fn frame(&self, title: &str) -> Frame {
        Frame {
            periods: Some(period_choices(&self.runs, self.period)),
            run: Some(self.run.run.clone()),
            ..self.names.frame(self.state, title, self.period)
        }
    }
}

/// The named periods with a run, for the selector.
pub fn period_choices(runs: &[AnalyticsRun], selected: Option<Period>) -> Vec<PeriodChoice> {
    earshot_metrics::runs::periods(runs)
        .into_iter()
        .map(|p| PeriodChoice {
            value: p.to_string(),
            label: p.label(),
            selected: Some(p) == selected,
        })
        .collect()
}

/// `404` for an id that is not a member's.
pub fn not_a_member(id: &str) -> PageError {
    PageError::not_found(
        "No such member",
        format!("Nobody called `{id}` is in the group."),
    )
}
