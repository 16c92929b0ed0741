//! Delivering a message to a destination: its secret URL read from where the config says, one POST
//! with retries, and errors that never carry the URL.
//!
//! A webhook URL is its own credential (whoever has it can post), so it is read from an environment
//! variable or a file, is never logged, and every error that could hold it (reqwest's, a response
//! body echoing the request) passes through [`Secret::redact`] first.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Result, anyhow, bail};
use earshot_core::{DestinationConfig, DestinationKind};
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use serde_json::Value;
use tracing::{info, warn};
use url::Url;

/// The largest URL file read (a webhook URL is well under 1 KiB).
pub const MAX_URL_FILE_BYTES: u64 = 8 * 1024;
/// At most this much of an error response's body is read, to quote it.
pub const MAX_ERROR_BODY_BYTES: usize = 4 * 1024;
/// How much of an error response's body a message quotes.
const QUOTED_BODY_CHARS: usize = 300;
/// The first wait after a 5xx or a timeout; it doubles each time.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);

/// A destination's URL, kept out of every message.
pub struct Secret {
    url: Url,
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl Secret {
    /// The URL of `destination`, from its `url_env` or `url_file`. Errors name the variable or the
    /// file, never what they hold.
    pub fn read(destination: &DestinationConfig) -> Result<Secret> {
        let name = &destination.name;
        let text = match (&destination.url_env, &destination.url_file) {
            (Some(var), _) => std::env::var(var).map_err(|_| {
                anyhow!(
                    "destination `{name}`: the environment variable `{var}` (url_env) is not set"
                )
            })?,
            (None, Some(file)) => read_url_file(name, file)?,
            (None, None) => bail!("destination `{name}`: no `url_env` or `url_file`"),
        };
        let text = text.trim();
        let url = Url::parse(text)
            .map_err(|_| anyhow!("destination `{name}`: its URL does not parse as a URL"))?;
        let loopback = match url.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            Some(url::Host::Domain(d)) => d == "localhost",
            None => false,
        };
        match url.scheme() {
            "https" => {}
            // Plain HTTP would send the secret in the clear: only to this machine.
            "http" if loopback => {}
            _ => bail!(
                "destination `{name}`: its URL must be https:// (http:// only to this machine's loopback)"
            ),
        }
        if url.host().is_none() || !url.username().is_empty() || url.password().is_some() {
            bail!("destination `{name}`: its URL must name a host and hold no user or password");
        }
        Ok(Secret { url })
    }

    /// A secret of a known URL (tests).
    pub fn from_url(url: Url) -> Secret {
        Secret { url }
    }

    /// The URL.
    pub fn url(&self) -> &Url {
        &self.url
    }

    /// `text` with the URL, and each part of its path and query long enough to be a token, replaced.
    pub fn redact(&self, text: &str) -> String {
        let mut out = text.replace(self.url.as_str(), "<url>");
        let mut parts: Vec<String> = self
            .url
            .path_segments()
            .into_iter()
            .flatten()
            .map(str::to_string)
            .collect();
        parts.extend(self.url.query_pairs().map(|(_, v)| v.into_owned()));
        parts.sort_by_key(|p| std::cmp::Reverse(p.len()));
        for part in parts.iter().filter(|p| p.len() >= 6) {
            out = out.replace(part.as_str(), "<redacted>");
        }
        out
    }
}

fn read_url_file(name: &str, file: &Path) -> Result<String> {
    let shown = file.display();
    let meta = std::fs::metadata(file)
        .map_err(|e| anyhow!("destination `{name}`: cannot read url_file `{shown}`: {e}"))?;
    if meta.len() > MAX_URL_FILE_BYTES {
        bail!(
            "destination `{name}`: url_file `{shown}` is {} bytes, more than a URL ({MAX_URL_FILE_BYTES} at most)",
            meta.len()
        );
    }
    let text = std::fs::read_to_string(file)
        .map_err(|e| anyhow!("destination `{name}`: cannot read url_file `{shown}`: {e}"))?;
    Ok(text
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or_default()
        .to_string())
}

/// Where a destination's message is POSTed, and (ntfy) the topic the body names.
pub fn target(kind: DestinationKind, secret: &Secret) -> Result<(Url, Option<String>)> {
    if kind != DestinationKind::Ntfy {
        return Ok((secret.url().clone(), None));
    }
    // `https://ntfy.sh/<topic>`: JSON is published to the server's root (the path before the topic).
    let mut segments: Vec<&str> = secret
        .url()
        .path_segments()
        .into_iter()
        .flatten()
        .filter(|s| !s.is_empty())
        .collect();
    let topic = segments
        .pop()
        .filter(|t| {
            t.len() <= 64
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        .ok_or_else(|| {
            anyhow!("an ntfy URL ends with its topic (letters, digits, `-`, `_`; at most 64)")
        })?
        .to_string();
    let mut root = secret.url().clone();
    root.set_query(None);
    let path = segments.iter().fold(String::from("/"), |mut p, s| {
        p.push_str(s);
        p.push('/');
        p
    });
    root.set_path(&path);
    Ok((root, Some(topic)))
}

/// How posts are retried.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// Each request's whole time (connect, send, answer).
    pub timeout: Duration,
    /// The most time a destination's `Retry-After`s may make a run wait, in all.
    pub max_wait: Duration,
    /// The time within which 5xx answers, timeouts and refused connections are retried.
    pub retry_budget: Duration,
}

/// An HTTP client for webhooks: no redirects followed (a redirect would send the message, and
/// perhaps the URL, elsewhere), a timeout on every request.
pub fn client(policy: &Policy) -> Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(policy.timeout.min(Duration::from_secs(10)))
        .timeout(policy.timeout)
        .user_agent(concat!("earshot-recap/", env!("CARGO_PKG_VERSION")))
        .build()?)
}

/// POST `body` to `url` until it is accepted (2xx), retrying within `policy`. Returns the attempts
/// made. Errors name `name`, never the URL.
pub async fn deliver(
    http: &reqwest::Client,
    name: &str,
    secret: &Secret,
    url: &Url,
    body: &Value,
    policy: &Policy,
) -> Result<u32> {
    let started = Instant::now();
    let mut waited = Duration::ZERO;
    let mut backoff = FIRST_BACKOFF;
    let mut attempts = 0;
    loop {
        attempts += 1;
        let transient = match http.post(url.clone()).json(body).send().await {
            Ok(response) if response.status().is_success() => {
                info!(
                    destination = name,
                    status = response.status().as_u16(),
                    attempts,
                    "Posted."
                );
                return Ok(attempts);
            }
            Ok(response) if response.status() == StatusCode::TOO_MANY_REQUESTS => {
                let headers = response.headers().clone();
                let text = body_text(response).await;
                let wait = retry_after(&headers, &text).unwrap_or(FIRST_BACKOFF);
                if waited + wait > policy.max_wait {
                    bail!(
                        "destination `{name}`: rate limited, asked to wait {} s (Retry-After), more than \
                         --max-wait {} s allows: the next run posts it",
                        wait.as_secs_f64().ceil(),
                        policy.max_wait.as_secs()
                    );
                }
                warn!(
                    destination = name,
                    wait_s = wait.as_secs_f64(),
                    "Rate limited: waiting as asked (Retry-After)."
                );
                tokio::time::sleep(wait).await;
                waited += wait;
                continue;
            }
            Ok(response) if response.status().is_server_error() => {
                format!("HTTP {}", response.status().as_u16())
            }
            Ok(response) => {
                let status = response.status().as_u16();
                let text = body_text(response).await;
                let quoted =
                    crate::formats::clip(secret.redact(text.trim()).as_str(), QUOTED_BODY_CHARS);
                bail!(
                    "destination `{name}` refused the message: HTTP {status}{}{quoted} (check its URL and kind)",
                    if quoted.is_empty() { "" } else { ": " }
                );
            }
            Err(err) if err.is_timeout() || err.is_connect() || err.is_request() => {
                secret.redact(&format!("{:#}", anyhow::Error::from(err.without_url())))
            }
            Err(err) => bail!(
                "destination `{name}`: {}",
                secret.redact(&format!("{:#}", anyhow::Error::from(err.without_url())))
            ),
        };
        if started.elapsed() + backoff > policy.retry_budget {
            bail!(
                "destination `{name}`: {transient}; gave up after {attempts} attempts in {:.0} s \
                 (--retry-budget {} s): the next run posts it",
                started.elapsed().as_secs_f64(),
                policy.retry_budget.as_secs()
            );
        }
        warn!(destination = name, error = %transient, retry_in_s = backoff.as_secs(), "Post failed; retrying.");
        tokio::time::sleep(backoff).await;
        backoff *= 2;
    }
}

/// At most [`MAX_ERROR_BODY_BYTES`] of a response's body, as text.
async fn body_text(mut response: reqwest::Response) -> String {
    let mut bytes = Vec::new();
    while let Ok(Some(chunk)) = response.chunk().await {
        bytes.extend_from_slice(&chunk);
        if bytes.len() >= MAX_ERROR_BODY_BYTES {
            bytes.truncate(MAX_ERROR_BODY_BYTES);
            break;
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// How long a 429 asks to wait: `Retry-After` in seconds (Discord sends decimals) or as an HTTP date,
/// else Discord's `retry_after` in the JSON body.
pub fn retry_after(headers: &HeaderMap, body: &str) -> Option<Duration> {
    let from_header = headers
        .get(RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let v = v.trim();
            if let Ok(seconds) = v.parse::<f64>() {
                return seconds_to_duration(seconds);
            }
            let at = chrono::DateTime::parse_from_rfc2822(v).ok()?;
            let left = at.with_timezone(&chrono::Utc) - chrono::Utc::now();
            Some(left.to_std().unwrap_or(Duration::ZERO))
        });
    from_header.or_else(|| {
        let json: Value = serde_json::from_str(body).ok()?;
        seconds_to_duration(json.get("retry_after")?.as_f64()?)
    })
}

fn seconds_to_duration(seconds: f64) -> Option<Duration> {
    (seconds.is_finite() && (0.0..1e9).contains(&seconds)).then(|| Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;

    use super::*;

    fn secret(url: &str) -> Secret {
        Secret::from_url(Url::parse(url).unwrap())
    }

    #[test]
    fn ntfy_posts_to_the_root_naming_the_topic() {
        let (url, topic) =
            target(DestinationKind::Ntfy, &secret("https://ntfy.sh/crew-Xy12")).unwrap();
        assert_eq!(url.as_str(), "https://ntfy.sh/");
        assert_eq!(topic.as_deref(), Some("crew-Xy12"));
        let (url, _) = target(
            DestinationKind::Ntfy,
            &secret("https://push.example/ntfy/t0p1c?x=1"),
        )
        .unwrap();
        assert_eq!(url.as_str(), "https://push.example/ntfy/");
        assert!(target(DestinationKind::Ntfy, &secret("https://ntfy.sh/")).is_err());
        let (url, topic) = target(
            DestinationKind::Slack,
            &secret("https://hooks.slack.com/services/T/B/x"),
        )
        .unwrap();
        assert_eq!(
            (url.as_str(), topic),
            ("https://hooks.slack.com/services/T/B/x", None)
        );
    }

    #[test]
    fn redaction_removes_the_url_and_its_tokens() {
        let s = secret("https://discord.com/api/webhooks/123456789/AbCdEfGhIj?thread_id=998877");
        let text = "failed https://discord.com/api/webhooks/123456789/AbCdEfGhIj?thread_id=998877 \
                    and webhooks/123456789 and token AbCdEfGhIj and 998877";
        let redacted = s.redact(text);
        for token in ["123456789", "AbCdEfGhIj", "998877", "discord.com/api"] {
            assert!(!redacted.contains(token), "{redacted}");
        }
        assert!(redacted.starts_with("failed <url>"), "{redacted}");
    }

    #[test]
    fn retry_after_reads_seconds_dates_and_discord_bodies() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, HeaderValue::from_static("2"));
        assert_eq!(retry_after(&headers, ""), Some(Duration::from_secs(2)));
        headers.insert(RETRY_AFTER, HeaderValue::from_static("0.5"));
        assert_eq!(retry_after(&headers, ""), Some(Duration::from_millis(500)));
        let later = (chrono::Utc::now() + chrono::Duration::seconds(30)).to_rfc2822();
        headers.insert(RETRY_AFTER, HeaderValue::from_str(&later).unwrap());
        let wait = retry_after(&headers, "").unwrap();
        assert!(
            wait > Duration::from_secs(25) && wait <= Duration::from_secs(30),
            "{wait:?}"
        );
        let none = HeaderMap::new();
        assert_eq!(
            retry_after(&none, r#"{"retry_after": 1.25, "global": false}"#),
            Some(Duration::from_millis(1250))
        );
        assert_eq!(retry_after(&none, "busy"), None);
        headers.insert(RETRY_AFTER, HeaderValue::from_static("-3"));
        assert_eq!(retry_after(&headers, ""), None);
    }

    #[test]
    fn a_url_must_be_https_or_loopback_and_errors_do_not_show_it() {
        let config = |var: &str| DestinationConfig {
            name: "chat".into(),
            kind: DestinationKind::Webhook,
            url_env: Some(var.into()),
            url_file: None,
        };
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("url");
        std::fs::write(&file, "\n  http://hooks.example/s3cr3t-path \n").unwrap();
        let from_file = DestinationConfig {
            url_env: None,
            url_file: Some(file.clone()),
            ..config("unused")
        };
        let err = Secret::read(&from_file).unwrap_err().to_string();
        assert!(err.contains("https://"), "{err}");
        assert!(!err.contains("s3cr3t"), "{err}");
        std::fs::write(&file, "http://127.0.0.1:9/s3cr3t-path\n").unwrap();
        assert_eq!(
            Secret::read(&from_file).unwrap().url().path(),
            "/s3cr3t-path"
        );
        std::fs::write(&file, "x".repeat(10_000)).unwrap();
        assert!(
            Secret::read(&from_file)
                .unwrap_err()
                .to_string()
                .contains("more than a URL")
        );
        let err = Secret::read(&config("EARSHOT_TEST_SURELY_UNSET_VAR"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("EARSHOT_TEST_SURELY_UNSET_VAR"), "{err}");
    }
}
