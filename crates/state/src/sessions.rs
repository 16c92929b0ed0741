//! The dashboard's sessions, kept on the server (MongoDB, [`DASHBOARD_SESSIONS`] in the group's own
//! database), so that signing out ends a session for good, several dashboard processes share them,
//! and a restart signs nobody out.
//!
//! - **The id.** A session is 32 random bytes (256 bits), sent once, in the cookie, as URL-safe
//!   base64. The store keeps only its SHA-256 (hex, the document's `_id`): a copy of the database
//!   opens no session.
//! - **Whose.** A session belongs to the group password's guest ([`Holder::Guest`], with a
//!   fingerprint of the password hash it was opened with) or to one member ([`Holder::Member`]), so
//!   that a friend's own sign-in can be told from the shared password and revoked alone.
//! - **How long.** At most [`LIFETIME`] from sign-in, and at most [`IDLE_TIMEOUT`] since it was last
//!   used (its `last_seen` is moved at most once every [`TOUCH_EVERY`], so a page view costs no write).
//! - **Ended by.** Signing out (that document is deleted), a new group password (a guest session
//!   opened with another password is refused and deleted: every guest session of the group ends), an
//!   erase of its member ([`SessionStore::end_member`]), or its time. Expired documents are deleted
//!   when found, at each sign-in, and by MongoDB's TTL index on `expires_at`.

use anyhow::{Context as _, Result};
use chrono::{DateTime, Duration, Utc};
use earshot_core::mongo::DASHBOARD_SESSIONS;
use mongodb::bson::{self, Document, doc};
use mongodb::{Collection, Database, IndexModel};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// The longest a session lasts from sign-in.
pub const LIFETIME: Duration = Duration::days(7);
/// The longest a session lasts unused.
pub const IDLE_TIMEOUT: Duration = Duration::days(2);
/// How often a session's `last_seen` is moved on at most.
pub const TOUCH_EVERY: Duration = Duration::minutes(5);
/// Random bytes in a session id (256 bits; at least 128 are needed).
pub const ID_BYTES: usize = 32;
/// The longest cookie value looked up (a real id is 43 characters).
const MAX_ID_LEN: usize = 64;

/// Whom a session belongs to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Holder {
    /// Whoever knows the group password: the group pages, nothing of one member's own.
    Guest {
        /// [`password_fingerprint`] of the hash the password was checked against.
        password: String,
    },
    /// One member, signed in as themselves.
    Member {
        /// The member's id.
        member: String,
    },
}

/// A session as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    /// The SHA-256 of the id, hex.
    #[serde(rename = "_id")]
    pub key: String,
    /// The group's id (`None` for a deployment's single group).
    pub group: Option<String>,
    /// Whom it belongs to.
    #[serde(flatten)]
    pub holder: Holder,
    /// When it was opened.
    pub created_at: bson::DateTime,
    /// When it was last used (to within [`TOUCH_EVERY`]).
    pub last_seen: bson::DateTime,
    /// When it ends whatever happens ([`LIFETIME`] after `created_at`).
    pub expires_at: bson::DateTime,
}

fn bson_time(at: DateTime<Utc>) -> bson::DateTime {
    bson::DateTime::from_millis(at.timestamp_millis())
}

fn chrono_time(at: bson::DateTime) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(at.timestamp_millis()).unwrap_or_default()
}

/// A fingerprint of a password hash (the first 16 bytes of its SHA-256, hex): stored with a guest
/// session, so that a new password ends the sessions the old one opened. It reveals nothing of the
/// password (the hash itself is a salted Argon2id).
pub fn password_fingerprint(hash: &str) -> String {
    hex(&Sha256::digest(hash.trim().as_bytes())[..16])
}

/// Bytes as lower-case hex: how the state stores digests and random ids.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The key a secret (a session id, a sign-in's `state`) is stored under: its SHA-256, hex, so that a
/// copy of the database reveals none.
pub fn key_of(id: &str) -> String {
    hex(&Sha256::digest(id.as_bytes()))
}

/// A new random session id.
fn new_id() -> Result<String> {
    let mut bytes = [0u8; ID_BYTES];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness for a session: {e}"))?;
    // URL-safe base64 without padding, by hand (no extra dependency for 32 bytes).
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(43);
    let mut bits: u32 = 0;
    let mut held = 0;
    for byte in bytes {
        bits = (bits << 8) | u32::from(byte);
        held += 8;
        while held >= 6 {
            held -= 6;
            out.push(ALPHABET[((bits >> held) & 63) as usize] as char);
        }
    }
    if held > 0 {
        out.push(ALPHABET[((bits << (6 - held)) & 63) as usize] as char);
    }
    Ok(out)
}

/// The CSRF token every form of the session `id`'s pages carries (sign-out, "Erase me", "Hide me from
/// comparisons"): derived from the id, which only the session's own browser holds (an HttpOnly
/// cookie), so a cross-site page cannot make it, and any dashboard process can check it without a key
/// of its own.
pub fn form_token(id: &str) -> String {
    hex(&Sha256::digest(format!("earshot form|{id}").as_bytes())[..16])
}

/// Whether `token` is the form token of the session `id` (compared in constant time).
pub fn form_token_valid(id: &str, token: &str) -> bool {
    let want = form_token(id);
    want.len() == token.len()
        && want
            .bytes()
            .zip(token.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
}

/// The filter of one member's own sessions (for an erase, and [`SessionStore::end_member`]).
pub fn of_member(member: &str) -> Document {
    doc! {"kind": "member", "member": member}
}

/// A group's sessions.
#[derive(Debug, Clone)]
pub struct SessionStore {
    sessions: Collection<Session>,
    group: Option<String>,
}

impl SessionStore {
    /// The sessions of the group whose database `db` is.
    pub fn new(db: &Database, group: Option<&str>) -> SessionStore {
        SessionStore {
            sessions: db.collection(DASHBOARD_SESSIONS),
            group: group.map(str::to_string),
        }
    }

    /// Create the TTL index on `expires_at` (MongoDB then deletes ended sessions by itself), and
    /// end every guest session opened with another password than `password` (its fingerprint), if
    /// any. A server without TTL indexes still works: ended sessions are refused and deleted when
    /// found and at each sign-in.
    pub async fn prepare(&self, password: Option<&str>) -> Result<()> {
        let ttl = IndexModel::builder()
            .keys(doc! {"expires_at": 1})
            .options(
                mongodb::options::IndexOptions::builder()
                    .name("expires_at_ttl".to_string())
                    .expire_after(std::time::Duration::ZERO)
                    .build(),
            )
            .build();
        if let Err(err) = self.sessions.create_index(ttl).await {
            tracing::warn!(
                error = %err,
                "The sessions' TTL index could not be created; ended sessions are deleted when found \
                 and at each sign-in."
            );
        }
        let mut stale = doc! {"kind": "guest"};
        if let Some(fingerprint) = password {
            stale.insert("password", doc! {"$ne": fingerprint});
        }
        self.sessions
            .delete_many(stale)
            .await
            .context("ending the sessions of an earlier group password")?;
        Ok(())
    }

    /// Open a session for `holder` at `now`: the id for the cookie (never stored).
    pub async fn open(&self, holder: Holder, now: DateTime<Utc>) -> Result<String> {
        self.sessions
            .delete_many(doc! {"expires_at": {"$lte": bson_time(now)}})
            .await
            .context("deleting ended sessions")?;
        let id = new_id()?;
        let session = Session {
            key: key_of(&id),
            group: self.group.clone(),
            holder,
            created_at: bson_time(now),
            last_seen: bson_time(now),
            expires_at: bson_time(now + LIFETIME),
        };
        self.sessions
            .insert_one(&session)
            .await
            .context("storing a session")?;
        Ok(id)
    }

    /// The live session of a cookie's id at `now`, or `None`. A guest session must have been opened
    /// with the password whose fingerprint is `password` (`None`: no guest session is valid). A
    /// session found ended is deleted; one used after [`TOUCH_EVERY`] is touched.
    pub async fn find(
        &self,
        id: &str,
        now: DateTime<Utc>,
        password: Option<&str>,
    ) -> Result<Option<Session>> {
        if id.is_empty() || id.len() > MAX_ID_LEN {
            return Ok(None);
        }
        let key = key_of(id);
        let Some(session) = self
            .sessions
            .find_one(doc! {"_id": &key})
            .await
            .context("reading a session")?
        else {
            return Ok(None);
        };
        let last_seen = chrono_time(session.last_seen);
        let live = chrono_time(session.expires_at) > now
            && last_seen + IDLE_TIMEOUT > now
            && session.group == self.group
            && match &session.holder {
                Holder::Guest { password: opened } => password == Some(opened.as_str()),
                Holder::Member { .. } => true,
            };
        if !live {
            self.sessions
                .delete_one(doc! {"_id": &key})
                .await
                .context("deleting an ended session")?;
            return Ok(None);
        }
        if now - last_seen >= TOUCH_EVERY {
            self.sessions
                .update_one(
                    doc! {"_id": &key},
                    doc! {"$set": {"last_seen": bson_time(now)}},
                )
                .await
                .context("touching a session")?;
        }
        Ok(Some(session))
    }

    /// End the session of a cookie's id (signing out). Ending one that does not exist is no error.
    pub async fn end(&self, id: &str) -> Result<()> {
        if id.is_empty() || id.len() > MAX_ID_LEN {
            return Ok(());
        }
        self.sessions
            .delete_one(doc! {"_id": key_of(id)})
            .await
            .context("ending a session")?;
        Ok(())
    }

    /// End every session of one member (an erase, or their own "sign out everywhere"): how many.
    pub async fn end_member(&self, member: &str) -> Result<u64> {
        Ok(self
            .sessions
            .delete_many(of_member(member))
            .await
            .context("ending a member's sessions")?
            .deleted_count)
    }

    /// Sessions open at `now`: not ended, and not expired (MongoDB's TTL monitor deletes expired
    /// ones only once a minute). For the operator's metrics.
    pub async fn open_at(&self, now: DateTime<Utc>) -> Result<u64> {
        self.sessions
            .count_documents(doc! {"expires_at": {"$gt": bson_time(now)}})
            .await
            .context("counting open sessions")
    }

    /// Sessions stored now, expired ones not yet deleted included (for tests).
    pub async fn count(&self) -> Result<u64> {
        self.sessions
            .count_documents(Document::new())
            .await
            .context("counting sessions")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use earshot_testkit::mongo_server::MongoServer;

    async fn store(test: &str) -> SessionStore {
        let server = MongoServer::shared();
        let db = earshot_core::mongo::connect(server.uri(), &server.database_name(test))
            .await
            .unwrap();
        SessionStore::new(&db, None)
    }

    #[test]
    fn ids_are_256_random_bits_in_url_safe_base64() {
        let a = new_id().unwrap();
        let b = new_id().unwrap();
        assert_eq!(a.len(), 43);
        assert_ne!(a, b);
        assert!(
            a.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
            "{a}"
        );
        assert_eq!(key_of(&a).len(), 64);
        assert_ne!(key_of(&a), a);
        assert!(form_token_valid(&a, &form_token(&a)));
        assert!(
            !form_token_valid(&b, &form_token(&a)),
            "one session's token only"
        );
        assert!(!form_token_valid(&a, ""));
    }

    #[tokio::test]
    async fn sessions_end_on_sign_out_password_change_idleness_and_lifetime() {
        let sessions = store("sessions_end").await;
        let now = Utc::now();
        let old = password_fingerprint("$argon2id$old");
        let new = password_fingerprint("$argon2id$new");
        let guest = Holder::Guest {
            password: old.clone(),
        };
        // Two sign-ins in the same second: different ids; ending one leaves the other.
        let a = sessions.open(guest.clone(), now).await.unwrap();
        let b = sessions.open(guest.clone(), now).await.unwrap();
        assert_ne!(a, b);
        assert!(sessions.find(&a, now, Some(&old)).await.unwrap().is_some());
        sessions.end(&a).await.unwrap();
        assert!(sessions.find(&a, now, Some(&old)).await.unwrap().is_none());
        assert!(sessions.find(&b, now, Some(&old)).await.unwrap().is_some());
        // The id itself is nowhere in the store.
        let stored = sessions.sessions.find_one(doc! {}).await.unwrap().unwrap();
        assert_ne!(stored.key, b);
        // A new password ends every guest session; a member's stays.
        let ana = sessions
            .open(
                Holder::Member {
                    member: "ana".into(),
                },
                now,
            )
            .await
            .unwrap();
        assert!(sessions.find(&b, now, Some(&new)).await.unwrap().is_none());
        assert!(
            sessions.find(&b, now, Some(&old)).await.unwrap().is_none(),
            "deleted"
        );
        assert!(
            sessions
                .find(&ana, now, Some(&new))
                .await
                .unwrap()
                .is_some()
        );
        let c = sessions.open(guest.clone(), now).await.unwrap();
        sessions.prepare(Some(&new)).await.unwrap();
        assert!(
            sessions.find(&c, now, Some(&old)).await.unwrap().is_none(),
            "ended at start"
        );
        // Idle for longer than the idle timeout; then past the lifetime while in use.
        let idle = sessions.open(guest.clone(), now).await.unwrap();
        assert!(
            sessions
                .find(&idle, now + IDLE_TIMEOUT + Duration::seconds(1), Some(&old))
                .await
                .unwrap()
                .is_none()
        );
        let busy = sessions.open(guest.clone(), now).await.unwrap();
        let mut at = now;
        while at < now + LIFETIME - Duration::days(1) {
            at += Duration::days(1);
            assert!(
                sessions
                    .find(&busy, at, Some(&old))
                    .await
                    .unwrap()
                    .is_some(),
                "{at}"
            );
        }
        assert!(
            sessions
                .find(&busy, now + LIFETIME, Some(&old))
                .await
                .unwrap()
                .is_none()
        );
        // A member's sessions end together; a forged or oversized id finds nothing.
        assert_eq!(sessions.end_member("ana").await.unwrap(), 1);
        assert!(sessions.find(&ana, now, None).await.unwrap().is_none());
        assert!(
            sessions
                .find(&"x".repeat(100), now, None)
                .await
                .unwrap()
                .is_none()
        );
        assert!(sessions.find("", now, None).await.unwrap().is_none());
    }
}
