//! The pages: group, member, pair, track, artist, recap, status; and the 400/404 pages. The login
//! form and signing in and out are [`crate::login`].

use std::collections::BTreeMap;
use std::sync::{Arc, LazyLock};

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use chrono::NaiveDate;
use earshot_core::mongo::{self, AnalyticsRun};
use earshot_core::period::Period;
use minijinja::Environment;
use mongodb::bson::doc;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::charts::{self, Bar, Heatmap};
use crate::data::{self, Row, num, text};

static TEMPLATES: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    for (name, source) in [
        ("head.html", include_str!("../templates/head.html")),
        (
            "listeners.html",
            include_str!("../templates/listeners.html"),
        ),
        ("base.html", include_str!("../templates/base.html")),
        ("group.html", include_str!("../templates/group.html")),
        ("member.html", include_str!("../templates/member.html")),
        ("pair.html", include_str!("../templates/pair.html")),
        ("track.html", include_str!("../templates/track.html")),
        ("artist.html", include_str!("../templates/artist.html")),
        ("recap.html", include_str!("../templates/recap.html")),
        ("status.html", include_str!("../templates/status.html")),
        ("login.html", include_str!("../templates/login.html")),
        ("error.html", include_str!("../templates/error.html")),
    ] {
        env.add_template(name, source)
            .unwrap_or_else(|e| panic!("template {name}: {e}"));
    }
    env
});

/// A page that could not be shown: its status and what to tell the person.
#[derive(Debug)]
pub struct PageError {
    status: StatusCode,
    title: String,
    message: String,
}

impl PageError {
    fn new(status: StatusCode, title: &str, message: impl Into<String>) -> PageError {
        PageError {
            status,
            title: title.to_string(),
            message: message.into(),
        }
    }
}

impl From<anyhow::Error> for PageError {
    fn from(err: anyhow::Error) -> PageError {
        tracing::error!(error = %format!("{err:#}"), "A page failed.");
        PageError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Something went wrong",
            "The dashboard could not read the group's data. The log says why.",
        )
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let body = render(
            "error.html",
            json!({"title": self.title, "message": self.message, "status": self.status.as_u16()}),
        )
        .unwrap_or_else(|_| Html(format!("<p>{}</p>", charts::escape(&self.message))));
        (self.status, body).into_response()
    }
}

/// Whole numbers as integers (MongoDB and JSON hand counts over as floats; a count reads `30`, not
/// `30.0`).
fn whole_numbers(value: &mut Value) {
    match value {
        Value::Number(n) => {
            if let Some(x) = n.as_f64().filter(|x| x.fract() == 0.0 && x.abs() < 1e15)
                && n.is_f64()
            {
                *value = json!(x as i64);
            }
        }
        Value::Array(items) => items.iter_mut().for_each(whole_numbers),
        Value::Object(map) => map.values_mut().for_each(whole_numbers),
        _ => {}
    }
}

pub(crate) fn render(name: &str, mut context: Value) -> Result<Html<String>, PageError> {
    whole_numbers(&mut context);
    TEMPLATES
        .get_template(name)
        .and_then(|t| t.render(context))
        .map(Html)
        .map_err(|e| anyhow::anyhow!("rendering {name}: {e:#}").into())
}

/// A path segment, percent-encoded (track keys of local files hold spaces and slashes).
pub fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// `?period=…` of a page.
#[derive(Debug, Deserialize)]
pub struct PeriodQuery {
    /// A named period (`2024`, `2024-10`, `2024-W44`); empty or absent: all time.
    #[serde(default)]
    pub period: Option<String>,
}

/// What every page of a run needs.
struct Page {
    run: AnalyticsRun,
    /// Every listed run (the period selector, the recap's neighbours).
    runs: Vec<AnalyticsRun>,
    period: Option<Period>,
    names: BTreeMap<String, String>,
    zone: chrono_tz::Tz,
    base: serde_json::Map<String, Value>,
}

impl Page {
    fn name(&self, id: &str) -> String {
        self.names
            .get(id)
            .cloned()
            .unwrap_or_else(|| id.to_string())
    }

    /// `?period=…` to keep on links.
    fn q(&self) -> String {
        period_query(self.period)
    }

    fn member(&self, id: &str) -> Value {
        json!({"id": id, "name": self.name(id), "href": format!("/member/{}{}", segment(id), self.q())})
    }

    fn track(&self, key: &str, name: &str) -> Value {
        json!({"key": key, "name": name, "href": format!("/track/{}{}", segment(key), self.q())})
    }

    /// An artist's name and link; no link for an artist without a Spotify id (an imported track not
    /// enriched yet, or removed from Spotify), whose page cannot exist.
    fn artist(&self, id: &str, name: &Value) -> Value {
        let href = (!id.is_empty()).then(|| format!("/artist/{}{}", segment(id), self.q()));
        json!({"name": name, "href": href})
    }

    fn context(mut self, title: &str, extra: Value) -> Value {
        self.base.insert("title".into(), json!(title));
        if let Value::Object(map) = extra {
            self.base.extend(map);
        }
        Value::Object(self.base)
    }
}

/// `?period=…` for links that keep a period (empty for all time).
fn period_query(period: Option<Period>) -> String {
    period.map_or_else(String::new, |p| format!("?period={p}"))
}

fn parse_period(query: &PeriodQuery) -> Result<Option<Period>, PageError> {
    match query.period.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(text) => text
            .parse::<Period>()
            .map(Some)
            .map_err(|e| PageError::new(StatusCode::BAD_REQUEST, "Not a period", e.to_string())),
    }
}

/// The base of every page (navigation, the period selector), without a run.
fn base(
    state: &AppState,
    names: &BTreeMap<String, String>,
    runs: &[AnalyticsRun],
    period: Option<Period>,
) -> serde_json::Map<String, Value> {
    let q = period_query(period);
    let nav: Vec<Value> = names
        .iter()
        .map(|(id, name)| json!({"name": name, "href": format!("/member/{}{q}", segment(id))}))
        .collect();
    let periods: Vec<Value> = data::periods(runs)
        .into_iter()
        .map(|p| json!({"value": p.to_string(), "label": p.label(), "selected": Some(p) == period}))
        .collect();
    let mut base = serde_json::Map::new();
    base.insert("nav".into(), json!(nav));
    base.insert("periods".into(), json!(periods));
    base.insert("q".into(), json!(q));
    base.insert("period".into(), json!(period.map(|p| p.to_string())));
    base.insert(
        "period_label".into(),
        json!(period.map_or_else(|| "All time".to_string(), |p| p.label())),
    );
    base.insert("signed_in".into(), json!(state.auth.is_some()));
    base.insert("group_name".into(), json!(state.stores.group.name));
    base
}

/// The base of a page without a run: the names read, then [`base`].
async fn base_without_run(
    state: &AppState,
    runs: &[AnalyticsRun],
) -> Result<serde_json::Map<String, Value>, PageError> {
    let names = data::names(&state.stores.db, &state.stores.group).await?;
    Ok(base(state, &names, runs, None))
}

async fn page(state: &AppState, query: &PeriodQuery) -> Result<Page, PageError> {
    let period = parse_period(query)?;
    let runs = data::runs(&state.stores.db).await?;
    page_of(state, runs, period).await
}

/// The page of `period`'s run among `runs` (read once per request).
async fn page_of(
    state: &AppState,
    runs: Vec<AnalyticsRun>,
    period: Option<Period>,
) -> Result<Page, PageError> {
    let Some(run) = data::pick(&runs, period).cloned() else {
        let message = match period {
            Some(p) => format!(
                "There are no answers for {} yet. They are computed by `analytics --period {p}`.",
                p.label()
            ),
            None => "There are no answers yet: the pipeline has not run analytics. Run \
                     `scripts/demo.sh` or the Airflow DAG, then reload."
                .to_string(),
        };
        return Err(PageError::new(
            StatusCode::NOT_FOUND,
            "No answers yet",
            message,
        ));
    };
    let names = data::names(&state.stores.db, &state.stores.group).await?;
    let mut base = base(state, &names, &runs, period);
    base.insert("run".into(), json!(run.run));
    let zone = state.stores.group.zone().map_err(|e| anyhow::anyhow!(e))?;
    Ok(Page {
        run,
        runs,
        period,
        names,
        zone,
        base,
    })
}

async fn rows(
    state: &AppState,
    page: &Page,
    metric: &str,
    filter: mongodb::bson::Document,
    sort: mongodb::bson::Document,
    limit: i64,
) -> Result<Vec<Row>, PageError> {
    Ok(data::rows(&state.stores.db, &page.run.run, metric, filter, sort, limit).await?)
}

/// A weekday × hour listening clock as a heatmap.
fn clock_chart(id: &str, title: &str, rows: &[Row]) -> String {
    let mut cells = vec![vec![None; 24]; 7];
    for row in rows {
        let (day, hour) = (num(row, "weekday") as usize, num(row, "hour") as usize);
        if (1..=7).contains(&day) && hour < 24 {
            let cell: &mut Option<f64> = &mut cells[day - 1][hour];
            *cell = Some(cell.unwrap_or(0.0) + num(row, "plays"));
        }
    }
    charts::heatmap(&Heatmap {
        id,
        title,
        unit: "plays",
        rows: ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
            .map(String::from)
            .to_vec(),
        columns: (0..24).map(|h| format!("{h}")).collect(),
        cells,
        decimals: 0,
        cell: (24.0, 22.0),
        label_width: 40.0,
    })
}

fn per_day(rows: &[Row]) -> Vec<(NaiveDate, f64)> {
    let mut days: BTreeMap<NaiveDate, f64> = BTreeMap::new();
    for row in rows {
        if let Ok(day) = NaiveDate::parse_from_str(text(row, "day"), "%Y-%m-%d") {
            *days.entry(day).or_default() += num(row, "plays");
        }
    }
    days.into_iter().collect()
}

/// The group page.
pub async fn group(
    State(state): State<Arc<AppState>>,
    Query(query): Query<PeriodQuery>,
) -> Result<Html<String>, PageError> {
    let page = page(&state, &query).await?;
    let summary = rows(
        &state,
        &page,
        "member_summary",
        doc! {},
        doc! {"plays": -1, "user_id": 1},
        0,
    )
    .await?;
    let most = charts::bars(
        "most",
        "Who listened most",
        "plays",
        &summary
            .iter()
            .map(|r| Bar {
                label: page.name(text(r, "user_id")),
                href: Some(format!(
                    "/member/{}{}",
                    segment(text(r, "user_id")),
                    page.q()
                )),
                value: num(r, "plays"),
            })
            .collect::<Vec<_>>(),
        true,
    );
    let members: Vec<Value> = summary
        .iter()
        .map(|r| {
            json!({"member": page.member(text(r, "user_id")), "plays": num(r, "plays"), "minutes": num(r, "minutes").round(),
                   "tracks": num(r, "unique_tracks"), "artists": num(r, "unique_artists")})
        })
        .collect();
    let chart_rows = rows(
        &state,
        &page,
        "track_listeners",
        doc! {},
        doc! {"listeners": -1, "plays": -1, "track_key": 1},
        20,
    )
    .await?;
    let keys: Vec<&str> = chart_rows.iter().map(|r| text(r, "track_key")).collect();
    let leaders = rows(
        &state,
        &page,
        "top_listener_by_track",
        doc! {"track_key": {"$in": &keys}},
        doc! {"user_id": 1},
        0,
    )
    .await?;
    let chart: Vec<Value> = chart_rows
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let key = text(r, "track_key");
            let top: Vec<Value> = leaders
                .iter()
                .filter(|l| text(l, "track_key") == key)
                .map(|l| json!({"member": page.member(text(l, "user_id")), "plays": num(l, "plays")}))
                .collect();
            json!({"position": i + 1, "track": page.track(key, text(r, "name")), "listeners": num(r, "listeners"), "plays": num(r, "plays"), "top": top})
        })
        .collect();
    let shared: Vec<Value> = rows(&state, &page, "shared_tracks", doc! {}, doc! {"shared": -1, "member_a": 1, "member_b": 1}, 0)
        .await?
        .iter()
        .map(|r| {
            let (a, b) = (text(r, "member_a"), text(r, "member_b"));
            json!({"a": page.member(a), "b": page.member(b), "href": format!("/pair/{}/{}{}", segment(a), segment(b), page.q()),
                   "shared": num(r, "shared"), "jaccard": format!("{:.2}", num(r, "jaccard"))})
        })
        .collect();
    let taste = rows(&state, &page, "taste_match", doc! {}, doc! {}, 0).await?;
    let ids: Vec<String> = summary
        .iter()
        .map(|r| text(r, "user_id").to_string())
        .collect();
    let matrix = charts::heatmap(&Heatmap {
        id: "taste",
        title: "Taste match",
        unit: "taste match, 0–100",
        rows: ids.iter().map(|id| page.name(id)).collect(),
        columns: ids.iter().map(|id| page.name(id)).collect(),
        cells: ids
            .iter()
            .map(|a| {
                ids.iter()
                    .map(|b| {
                        taste
                            .iter()
                            .find(|r| {
                                (text(r, "member_a") == a && text(r, "member_b") == b)
                                    || (text(r, "member_a") == b && text(r, "member_b") == a)
                            })
                            .map(|r| (num(r, "taste_match") * 10.0).round() / 10.0)
                    })
                    .collect()
            })
            .collect(),
        decimals: 1,
        cell: (70.0, 32.0),
        label_width: 120.0,
    });
    let clock_rows = rows(&state, &page, "listening_clock", doc! {}, doc! {}, 0).await?;
    let clock = clock_chart(
        "clock",
        "The group's listening clock (group time zone)",
        &clock_rows,
    );
    // Each member's clock too, to compare rhythms at a glance.
    let clocks: Vec<String> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let theirs: Vec<Row> = clock_rows
                .iter()
                .filter(|r| text(r, "user_id") == id)
                .cloned()
                .collect();
            clock_chart(
                &format!("clock-{i}"),
                &format!("{}'s listening clock", page.name(id)),
                &theirs,
            )
        })
        .collect();
    let days = charts::timeline(
        "days",
        "Plays per day",
        "plays",
        &per_day(&rows(&state, &page, "plays_per_day", doc! {}, doc! {}, 0).await?),
    );
    let weekly = match data::report(&state.stores.storage, &page.run.run).await? {
        Some(report) => {
            let week = report["meta"]["weekly_recap_week_starting"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let members: Vec<Value> = report["weekly_recap"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|m| {
                    let id = m["id"].as_str().unwrap_or_default();
                    let top = &m["top_track"];
                    json!({"member": page.member(id), "tracks": m["unique_tracks"], "artists": m["unique_artists"],
                           "top": top.get("track_key").and_then(Value::as_str).map(|k| page.track(k, top["name"].as_str().unwrap_or(k))),
                           "top_plays": top.get("plays")})
                })
                .collect();
            let iso = NaiveDate::parse_from_str(&week, "%Y-%m-%d").ok().map(|d| {
                let w = chrono::Datelike::iso_week(&d);
                Period::Week(w.year(), w.week()).to_string()
            });
            let recapped = iso.filter(|p| {
                data::periods(&page.runs)
                    .iter()
                    .any(|k| k.to_string() == *p)
            });
            json!({"week": week, "members": members, "period": recapped})
        }
        None => Value::Null,
    };
    let title = format!(
        "{} · {}",
        state.stores.group.name,
        page.period
            .map_or_else(|| "All time".to_string(), |p| p.label())
    );
    render("group.html", page.context(&title, json!({
        "most": most, "members": members, "chart": chart, "shared": shared, "matrix": matrix, "clock": clock, "clocks": clocks,
        "days": days, "weekly": weekly,
    })))
}

fn not_a_member(id: &str) -> PageError {
    PageError::new(
        StatusCode::NOT_FOUND,
        "No such member",
        format!("Nobody called `{id}` is in the group."),
    )
}

/// A member's page.
pub async fn member(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    Query(query): Query<PeriodQuery>,
) -> Result<Html<String>, PageError> {
    let page = page(&state, &query).await?;
    let summary = rows(
        &state,
        &page,
        "member_summary",
        doc! {"user_id": &id},
        doc! {},
        1,
    )
    .await?;
    if summary.is_empty() && !page.names.contains_key(&id) {
        return Err(not_a_member(&id));
    }
    let me = doc! {"user_id": &id};
    let tracks = |r: &Row| json!({"track": page.track(text(r, "track_key"), text(r, "name")), "plays": num(r, "plays"), "minutes": format!("{:.1}", num(r, "minutes"))});
    let by_plays: Vec<Value> = rows(
        &state,
        &page,
        "member_tracks",
        me.clone(),
        doc! {"plays": -1, "track_key": 1},
        10,
    )
    .await?
    .iter()
    .map(tracks)
    .collect();
    let by_minutes: Vec<Value> = rows(
        &state,
        &page,
        "member_tracks",
        me.clone(),
        doc! {"minutes": -1, "track_key": 1},
        10,
    )
    .await?
    .iter()
    .map(tracks)
    .collect();
    let artists: Vec<Value> = rows(
        &state,
        &page,
        "member_artists",
        me.clone(),
        doc! {"plays": -1, "artist_id": 1},
        10,
    )
    .await?
    .iter()
    .map(|r| {
        let mut artist = page.artist(text(r, "artist_id"), &json!(text(r, "name")));
        artist["plays"] = json!(num(r, "plays"));
        artist
    })
    .collect();
    let deep: Vec<Value> = rows(&state, &page, "track_listeners", doc! {"listeners": 1, "only_listener": &id}, doc! {"plays": -1, "track_key": 1}, 20)
        .await?
        .iter()
        .map(|r| json!({"track": page.track(text(r, "track_key"), text(r, "name")), "plays": num(r, "plays")}))
        .collect();
    let obscure = rows(&state, &page, "obscure", me.clone(), doc! {}, 1)
        .await?
        .into_iter()
        .next();
    let clock = clock_chart(
        "clock",
        &format!("{}'s listening clock (group time zone)", page.name(&id)),
        &rows(&state, &page, "listening_clock", me.clone(), doc! {}, 0).await?,
    );
    let days = charts::timeline(
        "days",
        &format!("{}'s plays per day", page.name(&id)),
        "plays",
        &per_day(&rows(&state, &page, "plays_per_day", me.clone(), doc! {}, 0).await?),
    );
    let recommendations: Vec<Value> = rows(&state, &page, "recommendation_scores", me.clone(), doc! {"score": -1, "track_key": 1}, 10)
        .await?
        .iter()
        .map(|r| json!({"track": page.track(text(r, "track_key"), text(r, "name")), "score": format!("{:.2}", num(r, "score"))}))
        .collect();
    let matches: Vec<Value> = rows(&state, &page, "taste_match", doc! {"$or": [{"member_a": &id}, {"member_b": &id}]}, doc! {"taste_match": -1}, 0)
        .await?
        .iter()
        .map(|r| {
            let (a, b) = (text(r, "member_a"), text(r, "member_b"));
            let friend = if a == id { b } else { a };
            json!({"friend": page.member(friend), "href": format!("/pair/{}/{}{}", segment(a), segment(b), page.q()), "match": format!("{:.1}", num(r, "taste_match"))})
        })
        .collect();
    let led = rows(
        &state,
        &page,
        "top_listener_by_track",
        me.clone(),
        doc! {"plays": -1, "track_key": 1},
        0,
    )
    .await?;
    let led_keys: Vec<&str> = led.iter().take(20).map(|r| text(r, "track_key")).collect();
    let led_names: BTreeMap<String, String> = rows(
        &state,
        &page,
        "track_listeners",
        doc! {"track_key": {"$in": &led_keys}},
        doc! {},
        0,
    )
    .await?
    .iter()
    .map(|r| {
        (
            text(r, "track_key").to_string(),
            text(r, "name").to_string(),
        )
    })
    .collect();
    let top_listener_of: Vec<Value> = led
        .iter()
        .take(20)
        .map(|r| {
            let key = text(r, "track_key");
            json!({"track": page.track(key, led_names.get(key).map_or(key, String::as_str)), "plays": num(r, "plays")})
        })
        .collect();
    let name = page.name(&id);
    render("member.html", page.context(&name, json!({
        "member": {"id": id, "name": name},
        "summary": summary.first().map(|r| json!({"plays": num(r, "plays"), "minutes": num(r, "minutes").round(), "tracks": num(r, "unique_tracks"), "artists": num(r, "unique_artists")})),
        "by_plays": by_plays, "by_minutes": by_minutes, "artists": artists, "deep": deep,
        "obscure": obscure.map(|r| json!({"obscure": num(&r, "obscure_plays"), "unknown": num(&r, "unknown_popularity_plays"), "known": num(&r, "known_popularity_plays")})),
        "clock": clock, "days": days, "recommendations": recommendations, "matches": matches,
        "top_listener_of": top_listener_of, "top_listener_count": led.len(),
    })))
}

/// Two members' page.
pub async fn pair(
    State(state): State<Arc<AppState>>,
    Path((a, b)): Path<(String, String)>,
    Query(query): Query<PeriodQuery>,
) -> Result<Response, PageError> {
    let page = page(&state, &query).await?;
    for id in [&a, &b] {
        if !page.names.contains_key(id) {
            return Err(not_a_member(id));
        }
    }
    if a == b {
        return Err(PageError::new(
            StatusCode::NOT_FOUND,
            "Not a pair",
            "A pair is two different members.",
        ));
    }
    if a > b {
        return Ok(Redirect::to(&format!(
            "/pair/{}/{}{}",
            segment(&b),
            segment(&a),
            page.q()
        ))
        .into_response());
    }
    let both = doc! {"member_a": &a, "member_b": &b};
    let shared = rows(&state, &page, "shared_tracks", both.clone(), doc! {}, 1)
        .await?
        .into_iter()
        .next();
    let favourite = rows(
        &state,
        &page,
        "shared_favourite",
        both.clone(),
        doc! {"plays": -1, "track_key": 1},
        5,
    )
    .await?;
    let names: BTreeMap<String, String> = rows(&state, &page, "track_listeners", doc! {"track_key": {"$in": favourite.iter().map(|r| text(r, "track_key")).collect::<Vec<_>>()}}, doc! {}, 0)
        .await?
        .iter()
        .map(|r| (text(r, "track_key").to_string(), text(r, "name").to_string()))
        .collect();
    let favourites: Vec<Value> = favourite
        .iter()
        .map(|r| {
            let key = text(r, "track_key");
            json!({"track": page.track(key, names.get(key).map_or(key, String::as_str)), "plays_a": num(r, "plays_a"), "plays_b": num(r, "plays_b")})
        })
        .collect();
    let taste = rows(&state, &page, "taste_match", both.clone(), doc! {}, 1)
        .await?
        .into_iter()
        .next();
    let overlap: Vec<Value> = rows(
        &state,
        &page,
        "top_list_overlap",
        both.clone(),
        doc! {"time_range": 1},
        0,
    )
    .await?
    .iter()
    .map(
        |r| json!({"range": text(r, "time_range").replace('_', " "), "overlap": num(r, "overlap")}),
    )
    .collect();
    let title = format!("{} & {}", page.name(&a), page.name(&b));
    let (member_a, member_b) = (page.member(&a), page.member(&b));
    Ok(render("pair.html", page.context(&title, json!({
        "a": member_a, "b": member_b,
        "shared": shared.map(|r| json!({"shared": num(&r, "shared"), "jaccard": format!("{:.2}", num(&r, "jaccard"))})),
        "favourites": favourites,
        "taste": taste.map(|r| format!("{:.1}", num(&r, "taste_match"))),
        "overlap": overlap,
    })))?.into_response())
}

/// What a track or artist page shows of its subject.
struct Listened {
    /// The name the analytics rows (else the derived collection) give it.
    name: String,
    /// Its listeners in the period, most plays first.
    ranked: Vec<Value>,
    /// Its derived-collection document (whole history: first and last play, links).
    stored: Option<Row>,
}

/// A track's or artist's listeners (`metric` rows whose `key_field` is `id`) and derived document
/// (`collection`, named by `name_field`); a 404 page when the group never played it.
async fn listened(
    state: &AppState,
    page: &Page,
    (metric, key_field, collection, name_field, what): (&str, &str, &str, &str, &str),
    id: &str,
) -> Result<Listened, PageError> {
    let listeners = rows(
        state,
        page,
        metric,
        doc! {key_field: id},
        doc! {"plays": -1, "user_id": 1},
        0,
    )
    .await?;
    let stored = data::derived(&state.stores.db, collection, id).await?;
    if listeners.is_empty() && stored.is_none() {
        return Err(PageError::new(
            StatusCode::NOT_FOUND,
            &format!("No such {what}"),
            format!("The group never played a {what} `{id}`."),
        ));
    }
    let name = listeners
        .first()
        .map(|r| text(r, "name").to_string())
        .or_else(|| stored.as_ref().map(|d| text(d, name_field).to_string()))
        .unwrap_or_else(|| id.to_string());
    let ranked = listeners
        .iter()
        .enumerate()
        .map(|(i, r)| json!({"rank": i + 1, "member": page.member(text(r, "user_id")), "plays": num(r, "plays"), "minutes": format!("{:.1}", num(r, "minutes"))}))
        .collect();
    Ok(Listened {
        name,
        ranked,
        stored,
    })
}

/// A track's page: its listeners ranked, and its first and last play.
pub async fn track(
    State(state): State<Arc<AppState>>,
    Path(key): Path<String>,
    Query(query): Query<PeriodQuery>,
) -> Result<Html<String>, PageError> {
    let page = page(&state, &query).await?;
    let Listened {
        name,
        ranked,
        stored,
    } = listened(
        &state,
        &page,
        (
            "member_tracks",
            "track_key",
            mongo::TRACKS,
            "artist_song_name",
            "track",
        ),
        &key,
    )
    .await?;
    let info = stored.as_ref().map(|d| {
        let ids = d.get("artist_ids").and_then(Value::as_array);
        let artists: Vec<Value> = d.get("artist_names").and_then(Value::as_array).into_iter().flatten().enumerate()
            .map(|(i, n)| page.artist(ids.and_then(|ids| ids.get(i)).and_then(Value::as_str).unwrap_or_default(), n))
            .collect();
        json!({"album": text(d, "album_name"), "duration": text(d, "duration"), "url": text(d, "track_url"), "artists": artists,
               "first": d.get("first_played").and_then(|v| data::local_time(v, page.zone)),
               "last": d.get("last_played").and_then(|v| data::local_time(v, page.zone))})
    });
    render(
        "track.html",
        page.context(
            &name,
            json!({"name": name, "key": key, "listeners": ranked, "info": info}),
        ),
    )
}

/// An artist's page: their listeners ranked, and their first and last play.
pub async fn artist(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    Query(query): Query<PeriodQuery>,
) -> Result<Html<String>, PageError> {
    let page = page(&state, &query).await?;
    let Listened {
        name,
        ranked,
        stored,
    } = listened(
        &state,
        &page,
        (
            "member_artists",
            "artist_id",
            mongo::ARTISTS,
            "artist_name",
            "artist",
        ),
        &id,
    )
    .await?;
    let info = stored.as_ref().map(|d| {
        json!({
            "url": text(d, "artist_url"), "plays": num(d, "plays"),
            "first": d.get("first_played").and_then(|v| data::local_time(v, page.zone)),
            "last": d.get("last_played").and_then(|v| data::local_time(v, page.zone)),
        })
    });
    render(
        "artist.html",
        page.context(
            &name,
            json!({"name": name, "listeners": ranked, "info": info}),
        ),
    )
}

/// The recap of a named period (the group's "Wrapped"); without one, the newest period recapped.
pub async fn recap(
    State(state): State<Arc<AppState>>,
    Query(query): Query<PeriodQuery>,
) -> Result<Response, PageError> {
    let period = parse_period(&query)?;
    let runs = data::runs(&state.stores.db).await?;
    let Some(period) = period.or_else(|| data::periods(&runs).into_iter().next()) else {
        let mut context = base_without_run(&state, &runs).await?;
        context.insert("title".into(), json!("Recap"));
        context.insert("empty".into(), json!(true));
        return Ok(render("recap.html", Value::Object(context))?.into_response());
    };
    if query.period.as_deref().is_none_or(str::is_empty) {
        return Ok(Redirect::to(&format!("/recap?period={period}")).into_response());
    }
    let page = page_of(&state, runs, Some(period)).await?;
    let recap = rows(
        &state,
        &page,
        "recap_members",
        doc! {},
        doc! {"minutes": -1, "user_id": 1},
        0,
    )
    .await?;
    let discovered = rows(
        &state,
        &page,
        "recap_discovered",
        doc! {},
        doc! {"user_id": 1, "plays": -1, "artist_id": 1},
        0,
    )
    .await?;
    let led = rows(
        &state,
        &page,
        "top_listener_by_track",
        doc! {},
        doc! {"plays": -1, "track_key": 1},
        0,
    )
    .await?;
    let chart_names: BTreeMap<String, String> =
        rows(&state, &page, "track_listeners", doc! {}, doc! {}, 0)
            .await?
            .iter()
            .map(|r| {
                (
                    text(r, "track_key").to_string(),
                    text(r, "name").to_string(),
                )
            })
            .collect();
    let members: Vec<Value> = recap
        .iter()
        .map(|r| {
            let id = text(r, "user_id");
            let found: Vec<Value> = discovered.iter().filter(|d| text(d, "user_id") == id).take(5)
                .map(|d| page.artist(text(d, "artist_id"), &json!(text(d, "name"))))
                .collect();
            let leads: Vec<Value> = led.iter().filter(|l| text(l, "user_id") == id).take(5)
                .map(|l| { let key = text(l, "track_key"); page.track(key, chart_names.get(key).map_or(key, String::as_str)) })
                .collect();
            json!({
                "member": page.member(id), "minutes": num(r, "minutes").round(), "plays": num(r, "plays"),
                "top_track": page.track(text(r, "top_track_key"), text(r, "top_track_name")), "top_track_plays": num(r, "top_track_plays"),
                "top_artist": page.artist(text(r, "top_artist_id"), &json!(text(r, "top_artist_name"))),
                "top_artist_plays": num(r, "top_artist_plays"),
                "top_album": text(r, "top_album_name"), "top_album_plays": num(r, "top_album_plays"),
                "discovered": num(r, "artists_discovered"), "discovered_names": found,
                "streak": num(r, "longest_streak_days"), "busiest_day": text(r, "busiest_day"), "busiest_day_plays": num(r, "busiest_day_plays"),
                "top_listener_of": num(r, "top_listener_of"), "leads": leads,
            })
        })
        .collect();
    let minutes = charts::bars(
        "minutes",
        &format!("Minutes listened, {}", period.label()),
        "minutes",
        &recap
            .iter()
            .map(|r| Bar {
                label: page.name(text(r, "user_id")),
                href: Some(format!(
                    "/member/{}{}",
                    segment(text(r, "user_id")),
                    page.q()
                )),
                value: num(r, "minutes").round(),
            })
            .collect::<Vec<_>>(),
        true,
    );
    let whole = rows(&state, &page, "recap_group", doc! {}, doc! {}, 1).await?.into_iter().next().map(|g| {
        let (a, b) = (text(&g, "closest_a"), text(&g, "closest_b"));
        json!({
            "track": page.track(text(&g, "most_shared_track_key"), text(&g, "most_shared_track_name")),
            "listeners": num(&g, "most_shared_listeners"), "plays": num(&g, "most_shared_plays"),
            "closest": (!a.is_empty()).then(|| json!({"a": page.member(a), "b": page.member(b), "href": format!("/pair/{}/{}{}", segment(a), segment(b), page.q()), "match": format!("{:.1}", num(&g, "closest_taste_match"))})),
        })
    });
    let (previous, next) = period.neighbours();
    let known = data::periods(&page.runs);
    let step = |p: Period| json!({"label": p.label(), "href": format!("/recap?period={p}"), "available": known.contains(&p)});
    let title = format!("{} · {}", state.stores.group.name, period.label());
    Ok(render(
        "recap.html",
        page.context(
            &format!("Recap · {}", period.label()),
            json!({
                "heading": title, "members": members, "minutes": minutes, "group": whole,
                "previous": step(previous), "next": step(next),
            }),
        ),
    )?
    .into_response())
}

/// Each member's authorisation, last play, gaps and import progress. Never a token.
pub async fn status(State(state): State<Arc<AppState>>) -> Result<Html<String>, PageError> {
    let runs = data::runs(&state.stores.db).await?;
    let mut context = base_without_run(&state, &runs).await?;
    let now = state.clock.now();
    let zone = state.stores.group.zone().map_err(|e| anyhow::anyhow!(e))?;
    let listed = earshot_state::roster::list(&state.stores, now).await?;
    let local = |t: &str| {
        chrono::DateTime::parse_from_rfc3339(t)
            .ok()
            .map(|t| t.with_timezone(&zone).format("%Y-%m-%d %H:%M").to_string())
    };
    let rows: Vec<Value> = listed
        .iter()
        .map(|m| {
            json!({
                "member": {"name": m.name, "href": format!("/member/{}", segment(&m.member)), "id": m.member},
                "authorisation": m.authorisation,
                "ends": m.authorisation_ends.map(|t| t.with_timezone(&zone).format("%Y-%m-%d").to_string()),
                "plays": m.plays, "imported": m.imported_plays,
                "last": m.last_play.as_deref().and_then(local),
                "gaps": m.gaps,
                "import": m.import.as_ref().map(|i| json!({"plays": i.plays, "set_aside": i.set_aside, "enriched": i.tracks_enriched, "to_enrich": i.tracks_to_enrich})),
                "listed": m.in_config,
            })
        })
        .collect();
    context.insert("title".into(), json!("Status"));
    context.insert("members".into(), json!(rows));
    context.insert(
        "run".into(),
        json!(
            runs.iter()
                .find(|r| r.kind == mongo::RUN_SCHEDULED)
                .map(|r| r.run.clone())
        ),
    );
    render("status.html", Value::Object(context))
}

/// The stylesheet.
pub async fn stylesheet() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        include_str!("../static/style.css"),
    )
        .into_response()
}

/// The icon.
pub async fn favicon() -> Response {
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        include_str!("../static/favicon.svg"),
    )
        .into_response()
}

/// Any other path.
pub async fn not_found() -> PageError {
    PageError::new(StatusCode::NOT_FOUND, "Not found", "There is no such page.")
}
