//! The routes (patterns from [`crate::urls`]) and the middleware every request passes: the security
//! headers, the request timeout, the Host check, and with a password the sign-in gate (a session on
//! the server, [`earshot_state::sessions`]).

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result};
use axum::Router;
use axum::extract::{DefaultBodyLimit, Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};

use crate::app::AppState;
use crate::exposure::Admission;
use crate::pages::{
    artist, assets, connect, group, listen_api, login, me, member, pair, recap, status, track,
};
use crate::server::{self, ServerLimits};
use crate::{auth, telemetry, urls};

/// The Content-Security-Policy of every response: no script of any kind, styles and images from the
/// dashboard itself, forms posting only to it, and no framing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'none'; style-src 'self'; \
     img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// The app: every page, behind the security headers, the Host check, the request timeout and, with a
/// password, the sign-in gate.
pub fn router(state: Arc<AppState>, request_timeout: Duration) -> Router {
    Router::new()
        .route(urls::GROUP, get(group::page))
        .route(urls::MEMBER, get(member::page))
        .route(urls::PAIR, get(pair::page))
        .route(urls::TRACK, get(track::page))
        .route(urls::ARTIST, get(artist::page))
        .route(urls::RECAP, get(recap::page))
        .route(urls::STATUS, get(status::page))
        .route(urls::HEALTHZ, get(telemetry::health_of_group))
        .route(urls::LOGIN, get(login::login_form).post(login::login))
        .route(urls::LOGOUT, post(login::logout))
        .route(urls::YOUR_DATA, get(me::page))
        .route(urls::YOUR_EXPORT, get(me::export))
        .route(urls::YOUR_LISTENS, get(me::listens))
        .route(urls::YOUR_COMPARISONS, post(me::comparisons))
        .route(urls::ERASE_ME, post(me::erase))
        .route(urls::YOUR_LISTEN_TOKEN, post(me::listen_token))
        .route(urls::CONNECT, get(connect::connect))
        .route(urls::CONNECT_CALLBACK, get(connect::callback))
        .route(
            urls::SUBMIT_LISTENS,
            post(listen_api::submit).layer(DefaultBodyLimit::max(listen_api::BODY_LIMIT)),
        )
        .route(urls::VALIDATE_TOKEN, get(listen_api::validate_token))
        .route(urls::STYLESHEET, get(assets::stylesheet))
        .route(urls::FAVICON_ICO, get(assets::favicon))
        .route(urls::FAVICON_SVG, get(assets::favicon))
        .fallback(assets::not_found)
        .layer(middleware::from_fn_with_state(state.clone(), gate))
        .layer(DefaultBodyLimit::max(server::MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(state.clone(), admit))
        .layer(middleware::from_fn_with_state(request_timeout, timeout))
        .layer(middleware::from_fn_with_state(
            state.clone(),
            security_headers,
        ))
        .layer(middleware::from_fn_with_state(state.clone(), within_base))
        .with_state(state)
}

/// The app of every group: one group's pages at the root, or each group's under its base (`/g/<id>`).
/// Outside every group's base there is nothing: `404`, naming no group.
pub fn app(states: &[Arc<AppState>], request_timeout: Duration) -> Router {
    match states {
        [only] if only.base.is_empty() => router(only.clone(), request_timeout),
        _ => {
            // `/g/<id>` is a group's page; `/g/<id>/` leads there (a typed address's slash).
            let all = states.to_vec();
            let mut app =
                Router::new()
                    .route(
                        &format!("{}/{{id}}/", urls::GROUPS_ROOT),
                        get(|Path(id): Path<String>| async move {
                            Redirect::to(&urls::group_base(&id))
                        }),
                    )
                    // Every group's MongoDB answers.
                    .route(
                        urls::HEALTHZ,
                        get(move || async move { telemetry::health(&all).await }),
                    );
            for state in states {
                app = app.nest(&state.base, router(state.clone(), request_timeout));
            }
            // The listen API at the root too: the token names the group.
            let groups = listen_api::Groups(Arc::new(states.to_vec()));
            let root_api = Router::new()
                .route(
                    urls::SUBMIT_LISTENS,
                    post(listen_api::submit_any)
                        .layer(DefaultBodyLimit::max(listen_api::BODY_LIMIT)),
                )
                .route(urls::VALIDATE_TOKEN, get(listen_api::validate_token_any))
                .layer(middleware::from_fn_with_state(request_timeout, timeout))
                .with_state(groups);
            let first = states.first().expect("at least one group").clone();
            app.merge(root_api)
                .fallback(assets::not_found)
                .layer(middleware::from_fn_with_state(first.clone(), admit))
                .layer(middleware::from_fn_with_state(first, security_headers))
        }
    }
}

/// Build the request's links for its group (see [`urls::within`]).
async fn within_base(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    urls::within(state.base.clone(), next.run(request)).await
}

/// Refuse a foreign Host (DNS rebinding) and, without a password, a proxied request.
async fn admit(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    match state.exposure.admit(&request) {
        Admission::Admit => next.run(request).await,
        Admission::ForeignHost => {
            tracing::debug!(host = ?request.headers().get(header::HOST), "Refused a foreign Host.");
            (
                StatusCode::MISDIRECTED_REQUEST,
                "This dashboard does not answer for that host name.\n",
            )
                .into_response()
        }
        Admission::ProxiedWithoutPassword => (
            StatusCode::FORBIDDEN,
            "This dashboard has no group password, so it answers only direct requests from this \
             machine, never through a proxy.\n",
        )
            .into_response(),
    }
}

/// `408` for a request not answered in time.
async fn timeout(State(limit): State<Duration>, request: Request, next: Next) -> Response {
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => (StatusCode::REQUEST_TIMEOUT, "The request took too long.\n").into_response(),
    }
}

/// With a group password, every page but the login form and the static files needs a valid session.
async fn gate(State(state): State<Arc<AppState>>, mut request: Request, next: Next) -> Response {
    let Some(auth) = &state.auth else {
        return next.run(request).await;
    };
    if urls::OPEN.contains(&request.uri().path()) {
        return next.run(request).await;
    }
    let cookie = auth::cookie_value(request.headers(), auth::SESSION_COOKIE);
    let signed_in = match &cookie {
        Some(id) => {
            state
                .sessions()
                .find(id, state.clock.now(), Some(auth.fingerprint()))
                .await
        }
        None => Ok(None),
    };
    match signed_in {
        Ok(Some(session)) => {
            // Who is looking, for the pages that are a member's own ("Your data").
            request.extensions_mut().insert(Viewer {
                member: match session.holder {
                    earshot_state::sessions::Holder::Member { member } => Some(member),
                    earshot_state::sessions::Holder::Guest { .. } => None,
                },
            });
            let token = earshot_state::sessions::form_token(cookie.as_deref().unwrap_or(""));
            return crate::render::with_form_token(token, next.run(request)).await;
        }
        Ok(None) => {}
        Err(err) => {
            tracing::error!(error = %format!("{err:#}"), "Could not read the sessions.");
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                [(header::RETRY_AFTER, "5")],
                "The dashboard cannot read its sessions right now. Try again in a moment.\n",
            )
                .into_response();
        }
    }
    let wanted = urls::href(request.uri().path_and_query().map_or("/", |p| p.as_str()));
    Redirect::to(&urls::login(&wanted)).into_response()
}

/// Who is looking: the member a session belongs to, or a guest of the group password (`None`).
#[derive(Debug, Clone)]
pub struct Viewer {
    /// The signed-in member, for a session of their own.
    pub member: Option<String>,
}

/// The headers every response carries (and HSTS when cookies are `Secure`).
async fn security_headers(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    if state.auth.as_ref().is_some_and(|a| a.secure_cookie) {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "same-origin"),
        (header::X_FRAME_OPTIONS, "DENY"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// Serve on a listener with the default limits until ctrl-c.
pub async fn serve(listener: tokio::net::TcpListener, state: Arc<AppState>) -> Result<()> {
    serve_with(listener, vec![state], ServerLimits::default()).await
}

/// Serve every group's pages on a listener within `limits` until ctrl-c.
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    states: Vec<Arc<AppState>>,
    limits: ServerLimits,
) -> Result<()> {
    let app = app(&states, limits.request_timeout);
    let proxies = states
        .first()
        .map(|s| s.exposure.trusted_proxies().to_vec())
        .unwrap_or_default();
    server::serve(listener, app, limits, &proxies, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
    .context("serving the dashboard")
}
