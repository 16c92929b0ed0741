//! Each member's listen token: what a ListenBrainz client (Navidrome, Jellyfin's plugin, a phone
//! scrobbler) sends as `Authorization: Token <token>` to submit the member's listens.
//!
//! One token per member, in the state store at `state/listen-tokens/<member>.json`
//! ([`layout::listen_token_key`], erased with the member). The store keeps only the token's SHA-256
//! ([`sessions::key_of`]): a copy of the storage cannot submit listens. A new token replaces the old
//! one, which stops working at once. The token is a random UUID (122 random bits), the shape
//! ListenBrainz's own tokens have, so clients that check the shape accept it.

use anyhow::{Context as _, Result};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use earshot_core::storage::StorageError;
use earshot_core::{Storage, layout};
use serde::{Deserialize, Serialize};

use crate::sessions;

/// What is stored of a member's token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredToken {
    /// The member it submits for.
    pub member: String,
    /// The token's SHA-256, hex.
    pub token_sha256: String,
    /// When it was made.
    pub created_at: DateTime<Utc>,
}

/// A new random token (a version-4 UUID).
pub fn new_token() -> Result<String> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness for a token: {e}"))?;
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex = sessions::hex(&bytes);
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    ))
}

/// Make `member` a new token, replacing any they had; returns it (shown once, never stored).
pub async fn create(storage: &Storage, member: &str, now: DateTime<Utc>) -> Result<String> {
    let token = new_token()?;
    let stored = StoredToken {
        member: member.to_string(),
        token_sha256: sessions::key_of(&token),
        created_at: now,
    };
    storage
        .write(
            &layout::listen_token_key(member),
            Bytes::from(serde_json::to_vec_pretty(&stored)?),
        )
        .await
        .with_context(|| format!("storing `{member}`'s listen token"))?;
    Ok(token)
}

/// What is stored of `member`'s token, if they have one.
pub async fn read(storage: &Storage, member: &str) -> Result<Option<StoredToken>> {
    let key = layout::listen_token_key(member);
    match storage.read_all(&key).await {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .with_context(|| format!("`{}` is not a listen token", storage.location(&key))),
        Err(StorageError::NotFound { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// Remove `member`'s token; `true` when there was one.
pub async fn revoke(storage: &Storage, member: &str) -> Result<bool> {
    Ok(storage.delete(&layout::listen_token_key(member)).await?)
}

/// The member `token` submits for, if it is one of the group's `members`' current tokens.
pub async fn member_of(
    storage: &Storage,
    members: &[String],
    token: &str,
) -> Result<Option<String>> {
    let hash = sessions::key_of(token.trim());
    for member in members {
        if let Some(stored) = read(storage, member).await?
            && stored.member == *member
            && constant_time_eq(stored.token_sha256.as_bytes(), hash.as_bytes())
        {
            return Ok(Some(member.clone()));
        }
    }
    Ok(None)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_version_4_uuids() {
        let a = new_token().unwrap();
        let b = new_token().unwrap();
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"), "{a}");
        assert!(
            earshot_core::recording::valid_mbid(&a).is_some(),
            "UUID-shaped: {a}"
        );
    }

    #[tokio::test]
    async fn a_token_names_its_member_until_replaced_or_revoked_and_only_its_hash_is_stored() {
        let dir = tempfile::tempdir().unwrap();
        let storage = Storage::open(dir.path().to_str().unwrap()).await.unwrap();
        let members = vec!["ana.mx".to_string(), "ben_k".to_string()];
        let now = Utc::now();
        let first = create(&storage, "ben_k", now).await.unwrap();
        assert_eq!(
            member_of(&storage, &members, &first)
                .await
                .unwrap()
                .as_deref(),
            Some("ben_k")
        );
        let stored =
            std::fs::read_to_string(dir.path().join(layout::listen_token_key("ben_k"))).unwrap();
        assert!(!stored.contains(&first), "the token itself is never stored");
        assert_eq!(
            member_of(&storage, &members, "not-a-token").await.unwrap(),
            None
        );
        // Not a member of this group: their token names no one here.
        assert_eq!(
            member_of(&storage, &members[..1], &first).await.unwrap(),
            None
        );

        let second = create(&storage, "ben_k", now).await.unwrap();
        assert_eq!(
            member_of(&storage, &members, &first).await.unwrap(),
            None,
            "replaced"
        );
        assert_eq!(
            member_of(&storage, &members, &second)
                .await
                .unwrap()
                .as_deref(),
            Some("ben_k")
        );
        assert!(revoke(&storage, "ben_k").await.unwrap());
        assert_eq!(
            member_of(&storage, &members, &second).await.unwrap(),
            None,
            "revoked"
        );
        assert!(!revoke(&storage, "ben_k").await.unwrap());
    }
}
