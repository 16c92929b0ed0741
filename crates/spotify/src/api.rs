//! HTTP to Spotify: the accounts service (code exchange, refresh) and the Web API (GET with bearer),
//! with Spotify's rate-limit and fault rules.
//!
//! - 429: wait `Retry-After` seconds, out of the run's waiting budget (`--max-wait`); a wait the budget
//!   cannot cover (development-mode apps see hours) stops the run cleanly instead of sleeping in an
//!   Airflow task.
//! - 5xx, timeouts, connection errors: capped exponential backoff with full jitter, at most
//!   [`MAX_ATTEMPTS`] tries, also out of the budget.
//! - Every 429 and every wait is counted in the run's step record
//!   ([`earshot_core::step_runs::note_rate_limited`], [`earshot_core::step_runs::note_spotify_wait`]),
//!   which the operator's metrics read.
//! - 401 on an API call: refresh once and retry. A refresh answered `invalid_grant` means the member
//!   must reconnect.
//!
//! Sign-in goes through rspotify's [`AuthCodePkceSpotify`] (the authorize URL with its PKCE S256
//! challenge and `state`, the code exchange), with its token cache and automatic refresh off: tokens
//! live in Earshot's encrypted store, and Earshot decides when to refresh. A refresh sends rspotify's
//! request through Earshot's one HTTP client (rspotify would build a client per refresh). Its failures
//! are read here (status, `Retry-After`, Spotify's error body) under the same rules as every other
//! request. Data calls keep Earshot's own models and client: rspotify's `FullTrack` requires
//! `external_ids` and `is_local`, which 2026 responses may lack, its error type cannot read Spotify's
//! error body, and raw pages must be kept verbatim anyway.

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use chrono::Utc;
use earshot_core::env;
use earshot_core::spotify::{ApiError, AuthError, SCOPES};
use rspotify::clients::OAuthClient as _;
use rspotify::http::HttpError;
use rspotify::{AuthCodePkceSpotify, ClientError, Config, Credentials, OAuth, Token};

use earshot_state::clock::Clock;

use crate::tokens::Tokens;

mod error;
pub use error::SpotifyError;

/// Tries of one request before giving up on 5xx and transport errors.
pub const MAX_ATTEMPTS: u32 = 5;
/// First backoff; doubles each try.
pub const BACKOFF_BASE: Duration = Duration::from_millis(500);
/// Longest single backoff.
pub const BACKOFF_CAP: Duration = Duration::from_secs(30);
/// One request's time limit.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Refresh when the access token has less than this left.
pub const REFRESH_MARGIN: chrono::Duration = chrono::Duration::seconds(60);

/// A Spotify app. Earshot is a public client (Authorization Code with PKCE): the client id is all it
/// needs, so no client secret is read, stored or sent.
#[derive(Debug, Clone)]
pub struct App {
    /// Client id (public).
    pub client_id: String,
}

impl App {
    /// The app of `client_id`.
    pub fn new(client_id: &str) -> App {
        App {
            client_id: client_id.to_string(),
        }
    }
}

/// Where Spotify is (the mock in tests).
#[derive(Debug, Clone)]
pub struct Endpoints {
    /// Web API base, e.g. `https://api.spotify.com`.
    pub api: String,
    /// Accounts service base, e.g. `https://accounts.spotify.com`.
    pub accounts: String,
}

impl Endpoints {
    /// From `SPOTIFY_API_BASE` / `SPOTIFY_ACCOUNTS_BASE`, else Spotify's.
    pub fn from_env() -> Endpoints {
        let get = |name: &str, default: &str| {
            std::env::var(name)
                .unwrap_or_else(|_| default.to_string())
                .trim_end_matches('/')
                .to_string()
        };
        Endpoints {
            api: get(env::SPOTIFY_API_BASE, env::DEFAULT_SPOTIFY_API_BASE),
            accounts: get(
                env::SPOTIFY_ACCOUNTS_BASE,
                env::DEFAULT_SPOTIFY_ACCOUNTS_BASE,
            ),
        }
    }
}

/// The run's waiting budget, shared by every member's requests.
#[derive(Debug, Clone)]
pub struct Budget(Arc<Mutex<Duration>>);

impl Budget {
    /// A budget of `total` waiting.
    pub fn new(total: Duration) -> Budget {
        Budget(Arc::new(Mutex::new(total)))
    }

    /// Take `wait` out of the budget if it fits; returns what was left when it does not.
    fn take(&self, wait: Duration) -> Result<(), Duration> {
        let mut left = self.0.lock().unwrap_or_else(|p| p.into_inner());
        if wait > *left {
            return Err(*left);
        }
        *left -= wait;
        Ok(())
    }
}

/// The shared HTTP machinery.
#[derive(Clone)]
pub struct Spotify {
    http: reqwest::Client,
    /// Where Spotify is.
    pub endpoints: Endpoints,
    /// Now and waiting.
    pub clock: Arc<dyn Clock>,
    budget: Budget,
}

impl Spotify {
    /// A client with a waiting budget and the default request timeout.
    pub fn new(
        endpoints: Endpoints,
        clock: Arc<dyn Clock>,
        budget: Budget,
    ) -> anyhow::Result<Spotify> {
        Spotify::with_timeout(endpoints, clock, budget, REQUEST_TIMEOUT)
    }

    /// A client whose requests time out after `timeout` (a timed-out request is retried).
    pub fn with_timeout(
        endpoints: Endpoints,
        clock: Arc<dyn Clock>,
        budget: Budget,
        timeout: Duration,
    ) -> anyhow::Result<Spotify> {
        // The roots Spotify's certificates chain to come compiled in (webpki-roots): reading and
        // parsing the machine's certificate store (which reqwest does whenever another crate of the
        // workspace enables its native roots) cost every run most of its CPU (issue #23).
        let http = reqwest::Client::builder()
            .tls_built_in_native_certs(false)
            .tls_built_in_webpki_certs(true)
            .timeout(timeout)
            .user_agent(concat!("earshot-data-fetcher/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Spotify {
            http,
            endpoints,
            clock,
            budget,
        })
    }

    fn backoff(attempt: u32) -> Duration {
        let ceiling = BACKOFF_BASE
            .saturating_mul(1 << attempt.min(16))
            .min(BACKOFF_CAP);
        let mut bytes = [0u8; 4];
        let _ = getrandom::fill(&mut bytes);
        let fraction = f64::from(u32::from_le_bytes(bytes)) / f64::from(u32::MAX);
        ceiling.mul_f64(fraction)
    }

    /// rspotify's PKCE client for `client_id`, pointed at this Spotify's accounts service, holding
    /// `token` when there is one. Its token cache and its automatic refresh are off.
    pub fn pkce_client(
        &self,
        client_id: &str,
        redirect_uri: &str,
        token: Option<Token>,
    ) -> AuthCodePkceSpotify {
        let config = Config {
            auth_base_url: format!("{}/", self.endpoints.accounts),
            api_base_url: format!("{}/v1/", self.endpoints.api),
            token_cached: false,
            token_refreshing: false,
            ..Config::default()
        };
        let oauth = OAuth {
            redirect_uri: redirect_uri.to_string(),
            // rspotify joins its scope set in hash order; one entry holding them joined keeps the URL
            // the same from one sign-in to the next, in `SCOPES`' order.
            scopes: [SCOPES.join(" ")].into_iter().collect(),
            ..OAuth::default()
        };
        let creds = Credentials::new_pkce(client_id);
        match token {
            Some(token) => AuthCodePkceSpotify::from_token_with_config(token, creds, oauth, config),
            None => AuthCodePkceSpotify::with_config(creds, oauth, config),
        }
    }

    /// Run one rspotify token request under Spotify's rules: 429 waits `Retry-After` out of the
    /// budget, 5xx and transport errors back off, `invalid_grant` means the member must reconnect.
    async fn token_request<F, Fut>(&self, member: &str, call: F) -> Result<Token, SpotifyError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<Token, ClientError>>,
    {
        let endpoint = "POST /api/token".to_string();
        let mut attempts = 0;
        loop {
            attempts += 1;
            let (status, retry_after, body) = match call().await {
                Ok(token) => return Ok(token),
                Err(ClientError::Http(http)) => match *http {
                    HttpError::StatusCode(response) => {
                        let status = response.status().as_u16();
                        let retry_after = retry_after(&response);
                        (
                            status,
                            retry_after,
                            response.bytes().await.unwrap_or_default(),
                        )
                    }
                    HttpError::Client(err) => {
                        self.retry_or(member, &endpoint, attempts, transport_detail(&err))
                            .await?;
                        continue;
                    }
                },
                Err(err) => {
                    return Err(SpotifyError::Body {
                        member: member.into(),
                        endpoint,
                        detail: err.to_string(),
                    });
                }
            };
            self.token_failure(member, &endpoint, attempts, status, retry_after, &body)
                .await?;
        }
    }

    /// A failed token request under Spotify's rules: `Ok` once a wait it allows is over (try again),
    /// or the error that ends it.
    async fn token_failure(
        &self,
        member: &str,
        endpoint: &str,
        attempts: u32,
        status: u16,
        retry_after: Option<u64>,
        body: &[u8],
    ) -> Result<(), SpotifyError> {
        let auth_error: Option<AuthError> = serde_json::from_slice(body).ok();
        if let Some(error) = &auth_error
            && error.error == "invalid_grant"
        {
            return Err(SpotifyError::NeedsReauth {
                member: member.into(),
                reason: error
                    .error_description
                    .clone()
                    .unwrap_or_else(|| error.error.clone()),
            });
        }
        if status == 429 {
            return self
                .wait_rate_limit(member, endpoint, retry_after, body)
                .await;
        }
        if status >= 500 && attempts < MAX_ATTEMPTS {
            return self.wait_backoff(member, endpoint, attempts).await;
        }
        let message = auth_error
            .map(|e| format!("{}: {}", e.error, e.error_description.unwrap_or_default()))
            .unwrap_or_else(|| snippet(body));
        Err(SpotifyError::Status {
            member: member.into(),
            endpoint: endpoint.into(),
            status,
            message,
            attempts,
        })
    }

    /// Earshot's tokens from rspotify's, its lifetime counted on Earshot's clock. A missing refresh
    /// token or scope keeps `previous`'s.
    fn tokens_from(
        &self,
        token: Token,
        client_id: &str,
        previous: Option<&Tokens>,
    ) -> Option<Tokens> {
        let mut scopes: Vec<String> = token.scopes.into_iter().collect();
        scopes.sort();
        let scope = match (scopes.is_empty(), previous) {
            (true, Some(previous)) => previous.scope.clone(),
            _ => scopes.join(" "),
        };
        Some(Tokens {
            access_token: token.access_token,
            expires_at: self.clock.now() + token.expires_in,
            refresh_token: token
                .refresh_token
                .or_else(|| previous.map(|p| p.refresh_token.clone()))?,
            client_id: client_id.to_string(),
            scope,
        })
    }

    /// Send a request and read its status, `Retry-After` and body. `Ok(None)`: a transport failure
    /// was waited out (backoff) and the caller tries again.
    async fn send(
        &self,
        member: &str,
        endpoint: &str,
        attempts: u32,
        request: reqwest::RequestBuilder,
    ) -> Result<Option<(u16, Option<u64>, Bytes)>, SpotifyError> {
        let response = match request.send().await {
            Ok(response) => response,
            Err(err) => {
                self.retry_or(member, endpoint, attempts, transport_detail(&err))
                    .await?;
                return Ok(None);
            }
        };
        let status = response.status().as_u16();
        let retry_after = retry_after(&response);
        match response.bytes().await {
            Ok(body) => Ok(Some((status, retry_after, body))),
            Err(err) => {
                self.retry_or(member, endpoint, attempts, transport_detail(&err))
                    .await?;
                Ok(None)
            }
        }
    }

    async fn retry_or(
        &self,
        member: &str,
        endpoint: &str,
        attempts: u32,
        detail: String,
    ) -> Result<(), SpotifyError> {
        if attempts >= MAX_ATTEMPTS {
            return Err(SpotifyError::Transport {
                member: member.into(),
                endpoint: endpoint.into(),
                detail,
                attempts,
            });
        }
        tracing::warn!(member, endpoint, attempt = attempts, error = %detail, "Request failed; retrying.");
        self.wait_backoff(member, endpoint, attempts).await
    }

    async fn wait_backoff(
        &self,
        member: &str,
        endpoint: &str,
        attempts: u32,
    ) -> Result<(), SpotifyError> {
        let wait = Self::backoff(attempts);
        if self.budget.take(wait).is_err() {
            return Err(SpotifyError::BudgetSpent {
                member: member.into(),
                endpoint: endpoint.into(),
            });
        }
        earshot_core::step_runs::note_spotify_wait(wait);
        self.clock.sleep(wait).await;
        Ok(())
    }

    async fn wait_rate_limit(
        &self,
        member: &str,
        endpoint: &str,
        retry_after: Option<u64>,
        body: &[u8],
    ) -> Result<(), SpotifyError> {
        earshot_core::step_runs::note_rate_limited();
        let seconds = retry_after.unwrap_or(1);
        let quota = serde_json::from_slice::<ApiError>(body)
            .ok()
            .and_then(|e| e.error.reason)
            .is_some_and(|r| r == "QUOTA_EXCEEDED");
        if let Err(left) = self.budget.take(Duration::from_secs(seconds)) {
            return Err(SpotifyError::RateLimited {
                member: member.into(),
                endpoint: endpoint.into(),
                retry_after: seconds,
                left: left.as_secs(),
                quota,
            });
        }
        tracing::warn!(
            member,
            endpoint,
            retry_after = seconds,
            quota,
            "Rate limited by Spotify; waiting as asked."
        );
        earshot_core::step_runs::note_spotify_wait(Duration::from_secs(seconds));
        self.clock.sleep(Duration::from_secs(seconds)).await;
        Ok(())
    }

    /// Exchange an authorization code for tokens, with the PKCE verifier `client` made with the
    /// authorize URL.
    pub async fn exchange_code(
        &self,
        client: &AuthCodePkceSpotify,
        code: &str,
    ) -> Result<Tokens, SpotifyError> {
        let member = "(connecting)";
        let token = self
            .token_request(member, || async {
                client.request_token(code).await?;
                let token = client.token.lock().await.ok().and_then(|t| t.clone());
                token.ok_or(ClientError::InvalidToken)
            })
            .await?;
        self.tokens_from(token, &client.creds.id, None)
            .ok_or_else(|| SpotifyError::Body {
                member: member.into(),
                endpoint: "POST /api/token".into(),
                detail: "the code exchange returned no refresh token".into(),
            })
    }

    /// Refresh a member's tokens. A response without a refresh token keeps the old one.
    ///
    /// The request is the one rspotify's PKCE client sends (`grant_type=refresh_token`, the refresh
    /// token and the client id, form-encoded), read into rspotify's `Token`, but it goes through this
    /// client: rspotify builds an HTTP client (and reads the machine's certificate store) for every
    /// refresh, which was most of a scheduled run's fixed cost (issue #23).
    pub async fn refresh(
        &self,
        member: &str,
        app: &App,
        tokens: &Tokens,
    ) -> Result<Tokens, SpotifyError> {
        let endpoint = "POST /api/token";
        let url = format!("{}/api/token", self.endpoints.accounts);
        let form = [
            ("grant_type", "refresh_token"),
            ("refresh_token", tokens.refresh_token.as_str()),
            ("client_id", app.client_id.as_str()),
        ];
        let mut attempts = 0;
        loop {
            attempts += 1;
            let request = self.http.post(&url).form(&form);
            let Some((status, retry_after, body)) =
                self.send(member, endpoint, attempts, request).await?
            else {
                continue;
            };
            if status == 200 {
                let token: Token =
                    serde_json::from_slice(&body).map_err(|err| SpotifyError::Body {
                        member: member.into(),
                        endpoint: endpoint.into(),
                        detail: format!("the token response does not read: {err}"),
                    })?;
                return Ok(self
                    .tokens_from(token, &tokens.client_id, Some(tokens))
                    .expect("the previous refresh token is kept"));
            }
            self.token_failure(member, endpoint, attempts, status, retry_after, &body)
                .await?;
        }
    }

    /// GET a Web API path with a bearer token. `Ok(Err(()))` means 401: the caller refreshes and retries.
    pub async fn get(
        &self,
        member: &str,
        path: &str,
        access_token: &str,
    ) -> Result<Result<Bytes, Unauthorized>, SpotifyError> {
        let endpoint = format!("GET {}", path.split('?').next().unwrap_or(path));
        let url = format!("{}{path}", self.endpoints.api);
        let mut attempts = 0;
        loop {
            attempts += 1;
            let request = self.http.get(&url).bearer_auth(access_token);
            let Some((status, retry_after, body)) =
                self.send(member, &endpoint, attempts, request).await?
            else {
                continue;
            };
            match status {
                200 => return Ok(Ok(body)),
                401 => return Ok(Err(Unauthorized)),
                429 => {
                    self.wait_rate_limit(member, &endpoint, retry_after, &body)
                        .await?
                }
                500..=599 if attempts < MAX_ATTEMPTS => {
                    tracing::warn!(member, endpoint = %endpoint, status, attempt = attempts, "Spotify server error; retrying.");
                    self.wait_backoff(member, &endpoint, attempts).await?;
                }
                _ => {
                    let message = serde_json::from_slice::<ApiError>(&body)
                        .map(|e| e.error.message)
                        .unwrap_or_else(|_| snippet(&body));
                    return Err(SpotifyError::Status {
                        member: member.into(),
                        endpoint,
                        status,
                        message,
                        attempts,
                    });
                }
            }
        }
    }
}

/// A 401 from the Web API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unauthorized;

fn retry_after(response: &reqwest::Response) -> Option<u64> {
    response
        .headers()
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

fn transport_detail(err: &reqwest::Error) -> String {
    if err.is_timeout() {
        "timed out".to_string()
    } else if err.is_connect() {
        "cannot connect".to_string()
    } else {
        "the connection failed".to_string()
    }
}

/// The start of an unexpected body, for messages (never a token: only error bodies get here).
fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    text.chars().take(200).collect()
}

/// `true` when `now` is within the refresh margin of `expires_at`.
pub fn needs_refresh(tokens: &Tokens, now: chrono::DateTime<Utc>) -> bool {
    tokens.expires_at - REFRESH_MARGIN <= now
}

#[cfg(test)]
mod tests;
