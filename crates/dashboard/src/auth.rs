//! Safe to share: the group password (an Argon2 hash), signed session cookies, the login form's CSRF
//! token, and the login rate limit.
//!
//! Sessions are stateless: a cookie holds its expiry and an HMAC-SHA256 of it under a key made when the
//! dashboard starts, so nothing about a visitor is stored anywhere (and a restart signs everyone out).

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context as _, Result, bail};
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac as _};
use sha2::Sha256;

/// The session cookie.
pub const SESSION_COOKIE: &str = "earshot_session";
/// The login form's CSRF cookie (a random nonce; the form carries its signature).
pub const CSRF_COOKIE: &str = "earshot_csrf";
/// How long a sign-in lasts.
pub const SESSION_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// Failed logins allowed per client address within [`RATE_WINDOW`].
pub const MAX_FAILED_LOGINS: usize = 5;
/// The window of the login rate limit.
pub const RATE_WINDOW: Duration = Duration::from_secs(60);

/// An Argon2id hash (PHC string) of a password, with a fresh random salt.
pub fn hash_password(password: &str) -> Result<String> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| anyhow::anyhow!("no randomness for the salt: {e}"))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| anyhow::anyhow!("salt: {e}"))?;
    Ok(Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| anyhow::anyhow!("hashing the password: {e}"))?
        .to_string())
}

/// The password check, sessions and rate limit of a dashboard with a group password.
pub struct Auth {
    hash: String,
    key: [u8; 32],
    /// Mark cookies `Secure` (the dashboard is served over HTTPS by a proxy in front of it).
    pub secure_cookie: bool,
    failures: Mutex<HashMap<IpAddr, VecDeque<Instant>>>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("secure_cookie", &self.secure_cookie)
            .finish_non_exhaustive()
    }
}

impl Auth {
    /// From an Argon2 hash (PHC string); refuses anything else, naming where it came from.
    pub fn new(hash: &str, source: &str, secure_cookie: bool) -> Result<Auth> {
        let hash = hash.trim();
        let parsed = PasswordHash::new(hash).map_err(|e| {
            anyhow::anyhow!(
                "{source} is not an Argon2 hash ({e}): make one with `dashboard hash-password`"
            )
        })?;
        if !parsed.algorithm.as_str().starts_with("argon2") {
            bail!(
                "{source} is a `{}` hash, not Argon2: make one with `dashboard hash-password`",
                parsed.algorithm
            );
        }
        let mut key = [0u8; 32];
        getrandom::fill(&mut key)
            .map_err(|e| anyhow::anyhow!("no randomness for the session key: {e}"))?;
        Ok(Auth {
            hash: hash.to_string(),
            key,
            secure_cookie,
            failures: Mutex::new(HashMap::new()),
        })
    }

    /// Whether the password is the group's (Argon2 verification, off the async runtime).
    pub async fn check_password(&self, password: String) -> bool {
        let hash = self.hash.clone();
        tokio::task::spawn_blocking(move || {
            PasswordHash::new(&hash).is_ok_and(|parsed| {
                Argon2::default()
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok()
            })
        })
        .await
        .unwrap_or(false)
    }

    fn mac(&self, purpose: &str, text: &str) -> Hmac<Sha256> {
        let mut mac = Hmac::<Sha256>::new_from_slice(&self.key).expect("HMAC takes any key length");
        mac.update(purpose.as_bytes());
        mac.update(b"|");
        mac.update(text.as_bytes());
        mac
    }

    fn sign(&self, purpose: &str, text: &str) -> String {
        URL_SAFE_NO_PAD.encode(self.mac(purpose, text).finalize().into_bytes())
    }

    fn verify(&self, purpose: &str, text: &str, signature: &str) -> bool {
        URL_SAFE_NO_PAD
            .decode(signature)
            .is_ok_and(|sig| self.mac(purpose, text).verify_slice(&sig).is_ok())
    }

    /// A session cookie's value, valid for [`SESSION_TTL`] from `now` (Unix seconds).
    pub fn new_session(&self, now: i64) -> String {
        let expires = now + SESSION_TTL.as_secs() as i64;
        format!("{expires}.{}", self.sign("session", &expires.to_string()))
    }

    /// Whether a session cookie's value is ours and unexpired at `now`.
    pub fn session_valid(&self, value: &str, now: i64) -> bool {
        let Some((expires, signature)) = value.split_once('.') else {
            return false;
        };
        expires.parse::<i64>().is_ok_and(|at| at > now)
            && self.verify("session", expires, signature)
    }

    /// A fresh CSRF nonce (the cookie) and its token (the form field).
    pub fn new_csrf(&self) -> Result<(String, String)> {
        let mut nonce = [0u8; 18];
        getrandom::fill(&mut nonce)
            .context("no randomness for the CSRF nonce")
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let nonce = URL_SAFE_NO_PAD.encode(nonce);
        let token = self.sign("csrf", &nonce);
        Ok((nonce, token))
    }

    /// Whether the form's CSRF token belongs to the cookie's nonce.
    pub fn csrf_valid(&self, nonce: &str, token: &str) -> bool {
        !nonce.is_empty() && self.verify("csrf", nonce, token)
    }

    /// `Some(seconds to wait)` when this address failed too often lately.
    pub fn limited(&self, ip: IpAddr, now: Instant) -> Option<u64> {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let recent = failures.entry(ip).or_default();
        while recent
            .front()
            .is_some_and(|t| now.duration_since(*t) >= RATE_WINDOW)
        {
            recent.pop_front();
        }
        if recent.len() >= MAX_FAILED_LOGINS {
            let oldest = *recent.front().expect("not empty");
            let wait = RATE_WINDOW.saturating_sub(now.duration_since(oldest));
            return Some(wait.as_secs().max(1));
        }
        None
    }

    /// Count a failed login from this address.
    pub fn failed(&self, ip: IpAddr, now: Instant) {
        let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        // Forget addresses whose failures are all old, so the map stays small.
        failures.retain(|_, times| {
            times
                .back()
                .is_some_and(|t| now.duration_since(*t) < RATE_WINDOW)
        });
        failures.entry(ip).or_default().push_back(now);
    }

    /// A `Set-Cookie` value.
    pub fn cookie(&self, name: &str, value: &str, path: &str, max_age: Option<Duration>) -> String {
        let mut cookie = format!("{name}={value}; Path={path}; HttpOnly; SameSite=Strict");
        if let Some(age) = max_age {
            cookie.push_str(&format!("; Max-Age={}", age.as_secs()));
        }
        if self.secure_cookie {
            cookie.push_str("; Secure");
        }
        cookie
    }
}

/// A cookie's value from a request's `Cookie` headers.
pub fn cookie_value(headers: &axum::http::HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn passwords_sessions_csrf_and_the_rate_limit() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert_ne!(
            hash,
            hash_password("correct horse").unwrap(),
            "a fresh salt each time"
        );
        let auth = Auth::new(&hash, "the test hash", false).unwrap();
        assert!(auth.check_password("correct horse".into()).await);
        assert!(!auth.check_password("correct horse ".into()).await);

        let session = auth.new_session(1_000);
        assert!(auth.session_valid(&session, 1_001));
        assert!(!auth.session_valid(&session, 1_000 + SESSION_TTL.as_secs() as i64));
        let (expires, sig) = session.split_once('.').unwrap();
        let forged = format!("{}.{sig}", expires.parse::<i64>().unwrap() + 1000);
        assert!(
            !auth.session_valid(&forged, 1_001),
            "a changed expiry fails the signature"
        );
        let other = Auth::new(&hash, "the test hash", false).unwrap();
        assert!(
            !other.session_valid(&session, 1_001),
            "another start, another key"
        );

        let (nonce, token) = auth.new_csrf().unwrap();
        assert!(auth.csrf_valid(&nonce, &token));
        let (nonce2, _) = auth.new_csrf().unwrap();
        assert!(!auth.csrf_valid(&nonce2, &token));
        assert!(!auth.csrf_valid("", &token));

        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let start = Instant::now();
        for _ in 0..MAX_FAILED_LOGINS {
            assert_eq!(auth.limited(ip, start), None);
            auth.failed(ip, start);
        }
        assert!(
            auth.limited(ip, start)
                .is_some_and(|s| s <= RATE_WINDOW.as_secs())
        );
        assert_eq!(auth.limited("127.0.0.2".parse().unwrap(), start), None);
        assert_eq!(
            auth.limited(ip, start + RATE_WINDOW),
            None,
            "the window passes"
        );

        for bad in ["", "hunter2", "$pbkdf2-sha256$i=1000$c2FsdA$aGFzaA"] {
            let err = Auth::new(bad, "EARSHOT_DASHBOARD_PASSWORD_HASH", false).unwrap_err();
            assert!(
                err.to_string().contains("EARSHOT_DASHBOARD_PASSWORD_HASH"),
                "{err}"
            );
            assert!(!err.to_string().contains("hunter2"), "{err}");
        }
    }
}
