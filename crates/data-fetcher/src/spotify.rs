//! HTTP to Spotify: the accounts service (code exchange, refresh) and the Web API (GET with bearer),
//! with Spotify's rate-limit and fault rules.
//!
//! - 429: wait `Retry-After` seconds, out of the run's waiting budget (`--max-wait`); a wait the budget
//!   cannot cover (development-mode apps see hours) stops the run cleanly instead of sleeping in an
//!   Airflow task.
//! - 5xx, timeouts, connection errors: capped exponential backoff with full jitter, at most
//!   [`MAX_ATTEMPTS`] tries, also out of the budget.
//! - 401 on an API call: refresh once and retry. A refresh answered `invalid_grant` means the member
//!   must reconnect.
//!
//! rspotify is not used: its models require fields Spotify removed in 2026 (`popularity`, …) and its
//! token cache writes tokens in clear; raw pages must be kept verbatim anyway.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use bytes::Bytes;
use chrono::Utc;
use earshot_core::env;
use earshot_core::spotify::{ApiError, AuthError, TokenResponse};

use crate::clock::Clock;
use crate::tokens::Tokens;

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

/// A secret string (client secret): `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wrap a secret.
    pub fn new(value: String) -> Secret {
        Secret(value)
    }

    /// The value, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<secret>")
    }
}

/// A Spotify app: its client id, and its secret when this machine has it (PKCE needs none).
#[derive(Debug, Clone)]
pub struct App {
    /// Client id (public).
    pub client_id: String,
    /// Client secret, from `SPOTIFY_CLIENT_SECRET` or `SPOTIFY_CLIENT_SECRET_FILE`.
    pub secret: Option<Secret>,
}

impl App {
    /// The secret for `client_id` from the environment, when `SPOTIFY_CLIENT_ID` names that app.
    pub fn from_env(client_id: &str) -> anyhow::Result<App> {
        let env_id = std::env::var(env::SPOTIFY_CLIENT_ID).ok();
        let secret = if env_id.as_deref() == Some(client_id) {
            match (
                std::env::var(env::SPOTIFY_CLIENT_SECRET),
                std::env::var(SPOTIFY_CLIENT_SECRET_FILE),
            ) {
                (Ok(secret), _) if !secret.is_empty() => Some(Secret(secret)),
                (_, Ok(path)) => Some(Secret(
                    std::fs::read_to_string(&path)
                        .map_err(|e| {
                            anyhow::anyhow!(
                                "reading `{SPOTIFY_CLIENT_SECRET_FILE}` file `{path}`: {e}"
                            )
                        })?
                        .trim()
                        .to_string(),
                )),
                _ => None,
            }
        } else {
            None
        };
        Ok(App {
            client_id: client_id.to_string(),
            secret,
        })
    }
}

use earshot_core::env::SPOTIFY_CLIENT_SECRET_FILE;

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

/// Why a request failed. Every variant names the member and the endpoint; none holds a token.
#[derive(Debug, thiserror::Error)]
pub enum SpotifyError {
    /// Spotify asked for a wait longer than what is left of the run's budget.
    #[error(
        "member `{member}`: {endpoint}: rate limited, Retry-After {retry_after} s exceeds the {left} s left of `--max-wait`"
    )]
    RateLimited {
        /// Member.
        member: String,
        /// Endpoint.
        endpoint: String,
        /// Seconds Spotify asked for.
        retry_after: u64,
        /// Seconds left of the budget.
        left: u64,
        /// Whether the body said `QUOTA_EXCEEDED`.
        quota: bool,
    },
    /// The refresh token was refused (`invalid_grant`): the member must run `data-fetcher auth` again.
    #[error(
        "member `{member}` needs to reconnect (`data-fetcher auth`): Spotify refused the refresh token ({reason})"
    )]
    NeedsReauth {
        /// Member.
        member: String,
        /// Spotify's description.
        reason: String,
    },
    /// A non-retryable status, or a retryable one after the last try.
    #[error("member `{member}`: {endpoint}: HTTP {status}{}: {message}", if *.attempts > 1 { format!(" after {} attempts", .attempts) } else { String::new() })]
    Status {
        /// Member.
        member: String,
        /// Endpoint.
        endpoint: String,
        /// HTTP status.
        status: u16,
        /// Spotify's message.
        message: String,
        /// Tries made.
        attempts: u32,
    },
    /// Timeouts or connection errors through the last try.
    #[error("member `{member}`: {endpoint}: {detail} (after {attempts} attempts)")]
    Transport {
        /// Member.
        member: String,
        /// Endpoint.
        endpoint: String,
        /// What went wrong.
        detail: String,
        /// Tries made.
        attempts: u32,
    },
    /// The body is not the JSON the endpoint returns (truncated, or a wrong shape).
    #[error("member `{member}`: {endpoint}: invalid response body: {detail}")]
    Body {
        /// Member.
        member: String,
        /// Endpoint.
        endpoint: String,
        /// serde's message with line and column.
        detail: String,
    },
    /// A waiting budget had run out before this request.
    #[error("member `{member}`: {endpoint}: the run's waiting budget (`--max-wait`) is spent")]
    BudgetSpent {
        /// Member.
        member: String,
        /// Endpoint.
        endpoint: String,
    },
}

impl SpotifyError {
    /// Whether the whole run should stop (rate limits are per app, so the others would wait too).
    pub fn stops_run(&self) -> bool {
        matches!(
            self,
            SpotifyError::RateLimited { .. } | SpotifyError::BudgetSpent { .. }
        )
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
        let http = reqwest::Client::builder()
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

    /// POST a form to the accounts service's token endpoint, with client authentication.
    async fn token_request(
        &self,
        member: &str,
        app: &App,
        form: &[(&str, &str)],
    ) -> Result<TokenResponse, SpotifyError> {
        let endpoint = "POST /api/token".to_string();
        let url = format!("{}/api/token", self.endpoints.accounts);
        let mut attempts = 0;
        loop {
            attempts += 1;
            let mut request = self.http.post(&url);
            let mut fields: Vec<(&str, &str)> = form.to_vec();
            match &app.secret {
                Some(secret) => {
                    let basic = base64::engine::general_purpose::STANDARD.encode(format!(
                        "{}:{}",
                        app.client_id,
                        secret.expose()
                    ));
                    request =
                        request.header(reqwest::header::AUTHORIZATION, format!("Basic {basic}"));
                }
                None => fields.push(("client_id", &app.client_id)),
            }
            let Some((status, retry_after, body)) = self
                .send(member, &endpoint, attempts, request.form(&fields))
                .await?
            else {
                continue;
            };
            if status == 200 {
                return serde_json::from_slice(&body).map_err(|e| SpotifyError::Body {
                    member: member.into(),
                    endpoint,
                    detail: e.to_string(),
                });
            }
            let auth_error: Option<AuthError> = serde_json::from_slice(&body).ok();
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
                self.wait_rate_limit(member, &endpoint, retry_after, &body)
                    .await?;
                continue;
            }
            if status >= 500 && attempts < MAX_ATTEMPTS {
                self.wait_backoff(member, &endpoint, attempts).await?;
                continue;
            }
            let message = auth_error
                .map(|e| format!("{}: {}", e.error, e.error_description.unwrap_or_default()))
                .unwrap_or_else(|| snippet(&body));
            return Err(SpotifyError::Status {
                member: member.into(),
                endpoint,
                status,
                message,
                attempts,
            });
        }
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
        self.clock.sleep(Duration::from_secs(seconds)).await;
        Ok(())
    }

    /// Exchange an authorization code (with its PKCE verifier) for tokens.
    pub async fn exchange_code(
        &self,
        app: &App,
        code: &str,
        redirect_uri: &str,
        verifier: &str,
    ) -> Result<Tokens, SpotifyError> {
        let response = self
            .token_request(
                "(connecting)",
                app,
                &[
                    ("grant_type", "authorization_code"),
                    ("code", code),
                    ("redirect_uri", redirect_uri),
                    ("code_verifier", verifier),
                ],
            )
            .await?;
        let refresh_token = response
            .refresh_token
            .clone()
            .ok_or_else(|| SpotifyError::Body {
                member: "(connecting)".into(),
                endpoint: "POST /api/token".into(),
                detail: "the code exchange returned no refresh token".into(),
            })?;
        Ok(Tokens {
            access_token: response.access_token,
            expires_at: self.clock.now() + chrono::Duration::seconds(response.expires_in as i64),
            refresh_token,
            client_id: app.client_id.clone(),
            scope: response.scope.unwrap_or_default(),
        })
    }

    /// Refresh a member's tokens. A response without a refresh token keeps the old one.
    pub async fn refresh(
        &self,
        member: &str,
        app: &App,
        tokens: &Tokens,
    ) -> Result<Tokens, SpotifyError> {
        let response = self
            .token_request(
                member,
                app,
                &[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", &tokens.refresh_token),
                ],
            )
            .await?;
        Ok(Tokens {
            access_token: response.access_token,
            expires_at: self.clock.now() + chrono::Duration::seconds(response.expires_in as i64),
            refresh_token: response
                .refresh_token
                .unwrap_or_else(|| tokens.refresh_token.clone()),
            client_id: tokens.client_id.clone(),
            scope: response.scope.unwrap_or_else(|| tokens.scope.clone()),
        })
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
