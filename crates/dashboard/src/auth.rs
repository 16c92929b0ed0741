//! Safe to share: the group password (an Argon2id hash of at least OWASP's strength), the login form's
//! single-use CSRF token, and the login throttle ([`crate::throttle`]).
//!
//! Sessions live on the server ([`earshot_state::sessions`], in the group's database): the cookie
//! carries a random id only, signing out deletes the session, and a new group password ends every
//! guest session. What is kept in memory is bounded: the CSRF tokens spent within their hour (at most
//! [`MAX_SPENT_CSRF`]) and the throttle's counts.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::{Context as _, Result, bail};
use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac as _};
use sha2::Sha256;

use crate::throttle::{LoginLimits, Throttle};

/// The session cookie.
pub const SESSION_COOKIE: &str = "earshot_session";
/// The login form's CSRF cookie (a random nonce; the form carries its signature).
pub const CSRF_COOKIE: &str = "earshot_csrf";
/// How long a sign-in lasts at most (the cookie's `Max-Age`; the session's own end is
/// [`earshot_state::sessions::LIFETIME`], and unused it ends after
/// [`earshot_state::sessions::IDLE_TIMEOUT`]).
pub const SESSION_TTL: Duration = Duration::from_secs(7 * 24 * 3600);
/// How long a login form's CSRF token is accepted.
pub const CSRF_TTL: Duration = Duration::from_secs(3600);
/// The most spent CSRF tokens remembered (each for [`CSRF_TTL`]); beyond that, sign-ins wait.
pub const MAX_SPENT_CSRF: usize = 20_000;
/// The weakest Argon2id parameters accepted for the group password's hash (OWASP's minimum, and
/// `dashboard hash-password`'s): memory in KiB, iterations, lanes.
pub const MIN_ARGON2_PARAMS: (u32, u32, u32) = (19_456, 2, 1);

/// Why a CSRF token was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CsrfRefusal {
    /// Not ours, not this cookie's, or older than [`CSRF_TTL`].
    Invalid,
    /// Ours, but already used once.
    Spent,
    /// Too many tokens spent lately to remember another.
    Busy,
}

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
    fingerprint: String,
    key: [u8; 32],
    /// Mark cookies `Secure` (the dashboard is served over HTTPS by a proxy in front of it).
    pub secure_cookie: bool,
    /// The login throttle.
    pub throttle: Throttle,
    /// CSRF nonces used once, with when they may be forgotten (Unix seconds).
    spent: Mutex<HashMap<String, i64>>,
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Auth")
            .field("secure_cookie", &self.secure_cookie)
            .finish_non_exhaustive()
    }
}

impl Auth {
    /// From an Argon2id hash (PHC string) of at least [`MIN_ARGON2_PARAMS`]; refuses anything else,
    /// naming where it came from.
    pub fn new(hash: &str, source: &str, secure_cookie: bool) -> Result<Auth> {
        let hash = hash.trim();
        let parsed = PasswordHash::new(hash).map_err(|e| {
            anyhow::anyhow!(
                "{source} is not an Argon2 hash ({e}): make one with `dashboard hash-password`"
            )
        })?;
        if parsed.algorithm.as_str() != "argon2id" {
            bail!(
                "{source} is a `{}` hash, not Argon2id: make one with `dashboard hash-password`",
                parsed.algorithm
            );
        }
        let params = argon2::Params::try_from(&parsed)
            .map_err(|e| anyhow::anyhow!("{source} has unreadable Argon2 parameters ({e})"))?;
        let (m, t, p) = MIN_ARGON2_PARAMS;
        if params.m_cost() < m || params.t_cost() < t || params.p_cost() < p {
            bail!(
                "{source} is an Argon2id hash with m={}, t={}, p={}, weaker than the minimum m={m}, \
                 t={t}, p={p}: make a new one with `dashboard hash-password`",
                params.m_cost(),
                params.t_cost(),
                params.p_cost()
            );
        }
        let mut key = [0u8; 32];
        getrandom::fill(&mut key)
            .map_err(|e| anyhow::anyhow!("no randomness for the session key: {e}"))?;
        Ok(Auth {
            hash: hash.to_string(),
            fingerprint: earshot_state::sessions::password_fingerprint(hash),
            key,
            secure_cookie,
            throttle: Throttle::new(LoginLimits::default()),
            spent: Mutex::new(HashMap::new()),
        })
    }

    /// The password hash's fingerprint, stored with the guest sessions it opens.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// The same, with these login limits.
    pub fn with_login_limits(mut self, limits: LoginLimits) -> Auth {
        self.throttle = Throttle::new(limits);
        self
    }

    /// Whether the password is the group's (Argon2 verification, off the async runtime). The permit
    /// (a slot of [`Throttle`]'s concurrent checks) is held until the check ends, even if the request
    /// that asked is gone.
    pub async fn check_password<P: Send + 'static>(&self, password: String, permit: P) -> bool {
        let hash = self.hash.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
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

    /// A fresh CSRF nonce issued at `now` (Unix seconds; the cookie) and its token (the form field).
    pub fn new_csrf(&self, now: i64) -> Result<(String, String)> {
        let mut nonce = [0u8; 18];
        getrandom::fill(&mut nonce)
            .context("no randomness for the CSRF nonce")
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        let nonce = format!("{now}.{}", URL_SAFE_NO_PAD.encode(nonce));
        let token = self.sign("csrf", &nonce);
        Ok((nonce, token))
    }

    /// Whether the form's CSRF token belongs to the cookie's nonce and is younger than [`CSRF_TTL`].
    pub fn csrf_valid(&self, nonce: &str, token: &str, now: i64) -> bool {
        let issued = nonce
            .split_once('.')
            .and_then(|(at, _)| at.parse::<i64>().ok());
        issued.is_some_and(|at| at <= now && now - at < CSRF_TTL.as_secs() as i64)
            && self.verify("csrf", nonce, token)
    }

    /// Accept a CSRF token once: valid, and never used before.
    pub fn spend_csrf(&self, nonce: &str, token: &str, now: i64) -> Result<(), CsrfRefusal> {
        if !self.csrf_valid(nonce, token, now) {
            return Err(CsrfRefusal::Invalid);
        }
        let mut spent = self.spent.lock().unwrap_or_else(|e| e.into_inner());
        if spent.contains_key(nonce) {
            return Err(CsrfRefusal::Spent);
        }
        if spent.len() >= MAX_SPENT_CSRF {
            spent.retain(|_, forget_at| *forget_at > now);
            if spent.len() >= MAX_SPENT_CSRF {
                return Err(CsrfRefusal::Busy);
            }
        }
        spent.insert(nonce.to_string(), now + CSRF_TTL.as_secs() as i64);
        Ok(())
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
    async fn passwords_sessions_and_single_use_csrf_tokens() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert_ne!(
            hash,
            hash_password("correct horse").unwrap(),
            "a fresh salt each time"
        );
        let auth = Auth::new(&hash, "the test hash", false).unwrap();
        assert!(auth.check_password("correct horse".into(), ()).await);
        assert!(!auth.check_password("correct horse ".into(), ()).await);

        let other = Auth::new(&hash, "the test hash", false).unwrap();
        assert_eq!(
            auth.fingerprint(),
            other.fingerprint(),
            "one password, one fingerprint"
        );
        let changed = Auth::new(
            &hash_password("correct horse").unwrap(),
            "a new hash",
            false,
        )
        .unwrap();
        assert_ne!(
            auth.fingerprint(),
            changed.fingerprint(),
            "a new password, another"
        );
        let (nonce, token) = auth.new_csrf(5_000).unwrap();
        assert!(
            !other.csrf_valid(&nonce, &token, 5_001),
            "another start, another key"
        );

        let (nonce, token) = auth.new_csrf(5_000).unwrap();
        assert!(auth.csrf_valid(&nonce, &token, 5_001));
        assert!(
            !auth.csrf_valid(&nonce, &token, 5_000 + CSRF_TTL.as_secs() as i64),
            "an hour old"
        );
        let (nonce2, _) = auth.new_csrf(5_000).unwrap();
        assert!(!auth.csrf_valid(&nonce2, &token, 5_001));
        assert!(!auth.csrf_valid("", &token, 5_001));
        assert_eq!(
            auth.spend_csrf(&nonce2, &token, 5_001),
            Err(CsrfRefusal::Invalid)
        );
        assert_eq!(auth.spend_csrf(&nonce, &token, 5_001), Ok(()));
        assert_eq!(
            auth.spend_csrf(&nonce, &token, 5_002),
            Err(CsrfRefusal::Spent),
            "a token is spent by its first use"
        );
    }

    /// A real Argon2 hash of `hunter2` with this variant and these parameters.
    fn hash_with(algorithm: argon2::Algorithm, m: u32, t: u32, p: u32) -> String {
        let params = argon2::Params::new(m, t, p, None).unwrap();
        let salt = SaltString::encode_b64(b"sixteen byte salt").unwrap();
        Argon2::new(algorithm, argon2::Version::V0x13, params)
            .hash_password(b"hunter2", &salt)
            .unwrap()
            .to_string()
    }

    #[test]
    fn only_argon2id_of_owasp_strength_is_accepted() {
        use argon2::Algorithm::{Argon2i, Argon2id};
        let weak = [
            (String::new(), "not an Argon2 hash"),
            ("hunter2".into(), "not an Argon2 hash"),
            (
                "$pbkdf2-sha256$i=1000$c2FsdA$aGFzaA".into(),
                "not an Argon2 hash",
            ),
            (hash_with(Argon2i, 19_456, 2, 1), "not Argon2id"),
            (hash_with(Argon2id, 4_096, 3, 1), "m=4096, t=3, p=1, weaker"),
            (hash_with(Argon2id, 19_456, 1, 1), "t=1"),
        ];
        for (bad, why) in weak {
            let err = Auth::new(&bad, "EARSHOT_DASHBOARD_PASSWORD_HASH", false)
                .err()
                .unwrap_or_else(|| panic!("accepted `{bad}`"))
                .to_string();
            assert!(err.contains("EARSHOT_DASHBOARD_PASSWORD_HASH"), "{err}");
            assert!(err.contains(why), "{err}");
            assert!(!err.contains("hunter2"), "{err}");
        }
        assert!(Auth::new(&hash_with(Argon2id, 19_456, 2, 1), "the minimum", false).is_ok());
        assert!(Auth::new(&hash_with(Argon2id, 65_536, 3, 4), "a strong hash", false).is_ok());
    }
}
