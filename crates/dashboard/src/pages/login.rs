//! The login form and signing in and out: the CSRF pair ([`crate::auth`]) first, then the throttle
//! ([`crate::throttle`]), in front of the password check; a session on the server
//! ([`earshot_state::sessions`]) for the right password, ended by signing out; and a `next=` that only
//! ever leads back into the dashboard.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::Form;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::{Deserialize, Serialize};

use crate::app::AppState;
use crate::auth::{self, CSRF_COOKIE, CsrfRefusal, SESSION_COOKIE, SESSION_TTL};
use crate::render::{Frame, PageError, render};
use crate::throttle::{ClientKey, Refusal};
use crate::urls;
use earshot_state::sessions::Holder;

/// The login form's context.
#[derive(Serialize)]
struct LoginPage<'a> {
    #[serde(flatten)]
    frame: Frame,
    action: &'a str,
    group_name: &'a str,
    csrf: String,
    next: &'a str,
    error: Option<&'a str>,
    /// "Sign in with Spotify", when the dashboard can connect accounts.
    connect: Option<String>,
}

/// `?next=` of the login form.
#[derive(Debug, Deserialize)]
pub struct LoginQuery {
    /// Where to go after signing in (a path of this site).
    #[serde(default)]
    pub next: Option<String>,
}

/// The longest `next=` followed after signing in.
const MAX_NEXT_LEN: usize = 2048;

/// Only a path of this site, within the group's pages, is followed after signing in: one `/`, then
/// neither `/` nor `\\`, no control character and no `\\` anywhere, checked on the value and on its
/// percent-decoding (browsers drop a tab or newline in a URL, so `/\t/evil.example` would become
/// `//evil.example`); in a dashboard of several groups, under the group's base. Anything else becomes
/// the group page.
pub fn safe_next(next: Option<&str>) -> String {
    fn same_site(path: &str) -> bool {
        let mut chars = path.chars();
        chars.next() == Some('/')
            && !matches!(chars.next(), Some('/' | '\\'))
            && !path.chars().any(|c| c.is_control() || c == '\\')
    }
    match next {
        Some(n)
            if n.len() <= MAX_NEXT_LEN
                && same_site(n)
                && same_site(&percent_decoded(n))
                && within_group(n) =>
        {
            n.to_string()
        }
        _ => urls::group(None),
    }
}

/// Whether `path` is one of the request's group's pages (any path in a one-group dashboard).
fn within_group(path: &str) -> bool {
    let base = urls::base();
    base.is_empty()
        || path
            .strip_prefix(&base)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with(['/', '?']))
}

/// `%XX` escapes decoded (invalid UTF-8 replaced); everything else as it is.
fn percent_decoded(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%'
            && let (Some(hi), Some(lo)) = (
                bytes.get(i + 1).copied().and_then(hex),
                bytes.get(i + 2).copied().and_then(hex),
            )
        {
            out.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn login_page(
    state: &AppState,
    next: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Result<Response, PageError> {
    let Some(auth) = &state.auth else {
        return Ok(Redirect::to(&urls::group(None)).into_response());
    };
    let (nonce, token) = auth.new_csrf(state.clock.now().timestamp())?;
    let html = render(
        "login.html",
        &LoginPage {
            frame: Frame::bare("Sign in"),
            action: &urls::href(urls::LOGIN),
            group_name: &state.stores.group.name,
            csrf: token,
            next,
            error,
            connect: state.spotify.as_ref().map(|_| urls::href(urls::CONNECT)),
        },
    )?;
    let mut response = (status, html).into_response();
    let cookie = auth.cookie(CSRF_COOKIE, &nonce, &urls::href(urls::LOGIN), None);
    response.headers_mut().append(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).map_err(anyhow::Error::from)?,
    );
    Ok(response)
}

/// Tell the browser to drop its session cookie (signed out, or erased).
pub(crate) fn forget_session_cookie(
    auth: &auth::Auth,
    response: &mut Response,
) -> Result<(), PageError> {
    let cookie = auth.cookie(
        SESSION_COOKIE,
        "",
        &session_path(),
        Some(std::time::Duration::ZERO),
    );
    response.headers_mut().append(
        header::SET_COOKIE,
        HeaderValue::from_str(&cookie).map_err(anyhow::Error::from)?,
    );
    Ok(())
}

/// The session cookie's path: the group's pages only (a browser signed in to one group of several
/// never sends that group's session to another's pages).
fn session_path() -> String {
    urls::group(None)
}

/// The login form.
pub async fn login_form(
    State(state): State<Arc<AppState>>,
    Query(query): Query<LoginQuery>,
) -> Result<Response, PageError> {
    login_page(
        &state,
        &safe_next(query.next.as_deref()),
        None,
        StatusCode::OK,
    )
}

/// The login form's fields.
#[derive(Deserialize)]
pub struct LoginForm {
    password: String,
    csrf: String,
    #[serde(default)]
    next: Option<String>,
}

/// The login form again with a refusal, and `Retry-After` when waiting helps.
fn refused(
    state: &AppState,
    next: &str,
    message: &str,
    status: StatusCode,
    retry_after: Option<u64>,
) -> Result<Response, PageError> {
    let mut response = login_page(state, next, Some(message), status)?;
    if let Some(wait) = retry_after {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(wait));
    }
    Ok(response)
}

/// The login form again for an attempt the throttle refused.
fn throttled(
    state: &AppState,
    next: &str,
    client: ClientKey,
    refusal: Refusal,
) -> Result<Response, PageError> {
    state.sign_ins.refused();
    match refusal {
        Refusal::Client(wait) => {
            tracing::warn!(client = %client, "Too many dashboard sign-in attempts from one client.");
            let message = if wait <= 60 {
                "Too many attempts. Wait a minute, then try again.".to_string()
            } else {
                format!(
                    "Too many wrong passwords from your address. Try again in {} minutes.",
                    wait.div_ceil(60)
                )
            };
            refused(
                state,
                next,
                &message,
                StatusCode::TOO_MANY_REQUESTS,
                Some(wait),
            )
        }
        Refusal::Budget(wait) => refused(
            state,
            next,
            "Too many wrong passwords lately: signing in is paused for everyone for up to an hour. \
             Friends already signed in are not affected.",
            StatusCode::TOO_MANY_REQUESTS,
            Some(wait),
        ),
        Refusal::Busy => refused(
            state,
            next,
            "The dashboard is busy. Try again in a moment.",
            StatusCode::SERVICE_UNAVAILABLE,
            Some(1),
        ),
    }
}

/// Check the password: a session and on to `next`, or the form again. The CSRF pair is checked first
/// (a post without a valid one is refused and counts nowhere), then the attempt takes its throttle
/// slot, then spends its token, then waits for a check slot; only then is the password checked.
pub async fn login(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Result<Response, PageError> {
    let Some(auth) = &state.auth else {
        return Ok(Redirect::to(&urls::group(None)).into_response());
    };
    let next = safe_next(form.next.as_deref());
    let now = state.clock.now();
    let nonce = auth::cookie_value(&headers, CSRF_COOKIE).unwrap_or_default();
    if !auth.csrf_valid(&nonce, &form.csrf, now.timestamp()) {
        return refused(
            &state,
            &next,
            "The form expired. Try again.",
            StatusCode::FORBIDDEN,
            None,
        );
    }
    let client = ClientKey::of(state.exposure.client(peer.ip(), &headers));
    let signed_in = match auth::cookie_value(&headers, SESSION_COOKIE) {
        Some(id) => state
            .sessions()
            .find(&id, now, Some(auth.fingerprint()))
            .await?
            .is_some(),
        None => false,
    };
    let attempt = match auth.throttle.begin_for(client, Instant::now(), signed_in) {
        Ok(attempt) => attempt,
        Err(refusal) => return throttled(&state, &next, client, refusal),
    };
    if let Err(why) = auth.spend_csrf(&nonce, &form.csrf, now.timestamp()) {
        attempt.release();
        let status = match why {
            CsrfRefusal::Busy => StatusCode::SERVICE_UNAVAILABLE,
            CsrfRefusal::Invalid | CsrfRefusal::Spent => StatusCode::FORBIDDEN,
        };
        return refused(&state, &next, "The form expired. Try again.", status, None);
    }
    let mut attempt = attempt;
    let permit = attempt.permit.take();
    if !auth.check_password(form.password, permit).await {
        attempt.wrong(Instant::now());
        state.sign_ins.failed();
        tracing::warn!(client = %client, "A wrong dashboard password.");
        return refused(
            &state,
            &next,
            "That is not the group's password.",
            StatusCode::UNAUTHORIZED,
            None,
        );
    }
    attempt.release();
    let session = state
        .sessions()
        .open(
            Holder::Guest {
                password: auth.fingerprint().to_string(),
            },
            now,
        )
        .await?;
    let mut response = Redirect::to(&next).into_response();
    let headers = response.headers_mut();
    for cookie in [
        auth.cookie(SESSION_COOKIE, &session, &session_path(), Some(SESSION_TTL)),
        auth.cookie(
            CSRF_COOKIE,
            "",
            &urls::href(urls::LOGIN),
            Some(std::time::Duration::ZERO),
        ),
    ] {
        headers.append(
            header::SET_COOKIE,
            HeaderValue::from_str(&cookie).map_err(anyhow::Error::from)?,
        );
    }
    Ok(response)
}

/// Sign out: the session is deleted on the server (a copy of the cookie opens nothing any more), and
/// the cookie cleared. The form carries the session's sign-out token
/// ([`earshot_state::sessions::form_token`]): a post without it (a cross-site page) ends nothing.
pub async fn logout(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, PageError> {
    let mut response = Redirect::to(&urls::href(urls::LOGIN)).into_response();
    if let Some(auth) = &state.auth {
        if let Some(id) = auth::cookie_value(&headers, SESSION_COOKIE) {
            let token: String = url::form_urlencoded::parse(&body)
                .find(|(k, _)| k == "csrf")
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default();
            if !earshot_state::sessions::form_token_valid(&id, &token) {
                return Err(PageError::new(
                    StatusCode::FORBIDDEN,
                    "Not signed out",
                    "This sign-out did not come from one of the dashboard's pages. Use the \
                     \"Sign out\" button of a page.",
                ));
            }
            state.sessions().end(&id).await?;
        }
        forget_session_cookie(auth, &mut response)?;
    }
    Ok(response)
}
