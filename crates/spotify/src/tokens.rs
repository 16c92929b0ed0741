//! Members' tokens, encrypted at rest.
//!
//! XChaCha20-Poly1305 (RustCrypto's `chacha20poly1305`, an AEAD) with a random 24-byte nonce per write
//! and the member's id as associated data, so a record cannot be moved to another member. The 32-byte
//! key comes from `EARSHOT_TOKEN_KEY` (base64) or the file `EARSHOT_TOKEN_KEY_FILE` names, never from a
//! flag. Records live in the storage (`state/tokens/<member>.json`, mode 0600 on local disks; works on
//! `gs://`, where Composer workers share nothing else) or in MongoDB (`fetcher_tokens`), encrypted the
//! same way. `Debug` never prints a token.

use std::fmt;

use anyhow::{Context as _, Result, anyhow, bail};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use chrono::{DateTime, Utc};
use earshot_core::layout::token_key;
use earshot_core::mongo::FETCHER_TOKENS;
use earshot_core::{Storage, env};
use mongodb::bson::{Document, doc};
use serde::{Deserialize, Serialize};

/// A member's tokens, in clear only in memory.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tokens {
    /// Bearer token for API calls.
    pub access_token: String,
    /// When the access token expires.
    pub expires_at: DateTime<Utc>,
    /// The current refresh token (replaced when Spotify rotates it).
    pub refresh_token: String,
    /// The app the member authorised.
    pub client_id: String,
    /// Scopes granted.
    pub scope: String,
}

impl fmt::Debug for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tokens")
            .field("access_token", &"<redacted>")
            .field("expires_at", &self.expires_at)
            .field("refresh_token", &"<redacted>")
            .field("client_id", &self.client_id)
            .finish()
    }
}

/// The key that encrypts token records.
#[derive(Clone)]
pub struct TokenKey(chacha20poly1305::Key);

impl fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenKey(<redacted>)")
    }
}

impl TokenKey {
    /// From `EARSHOT_TOKEN_KEY` (base64 of 32 bytes) or the file `EARSHOT_TOKEN_KEY_FILE` names.
    pub fn from_env() -> Result<TokenKey> {
        let text = match (
            std::env::var(env::EARSHOT_TOKEN_KEY),
            std::env::var(env::EARSHOT_TOKEN_KEY_FILE),
        ) {
            (Ok(key), _) => key,
            (Err(_), Ok(path)) => std::fs::read_to_string(&path).with_context(|| {
                format!(
                    "reading the token key file `{path}` (`{}`)",
                    env::EARSHOT_TOKEN_KEY_FILE
                )
            })?,
            _ => bail!(
                "no token key: set `{}` to 32 random bytes in base64 (e.g. `openssl rand -base64 32`), or `{}` to a file holding it",
                env::EARSHOT_TOKEN_KEY,
                env::EARSHOT_TOKEN_KEY_FILE
            ),
        };
        TokenKey::from_base64(text.trim())
    }

    /// From base64 text of exactly 32 bytes.
    pub fn from_base64(text: &str) -> Result<TokenKey> {
        let bytes = STANDARD
            .decode(text)
            .map_err(|_| anyhow!("the token key is not valid base64"))?;
        if bytes.len() != 32 {
            bail!("the token key must be 32 bytes, got {}", bytes.len());
        }
        Ok(TokenKey(*chacha20poly1305::Key::from_slice(&bytes)))
    }

    /// A fresh random key, base64 (for `data-fetcher keygen`).
    pub fn generate_base64() -> Result<String> {
        let mut bytes = [0u8; 32];
        getrandom::fill(&mut bytes).map_err(|e| anyhow!("no randomness: {e}"))?;
        Ok(STANDARD.encode(bytes))
    }

    fn seal(&self, member: &str, tokens: &Tokens) -> Result<Sealed> {
        let mut nonce = [0u8; 24];
        getrandom::fill(&mut nonce).map_err(|e| anyhow!("no randomness: {e}"))?;
        let plain = serde_json::to_vec(tokens)?;
        let cipher = XChaCha20Poly1305::new(&self.0)
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: &plain,
                    aad: member.as_bytes(),
                },
            )
            .map_err(|_| anyhow!("encrypting the tokens of member `{member}` failed"))?;
        Ok(Sealed {
            version: 1,
            member: member.to_string(),
            nonce: STANDARD.encode(nonce),
            ciphertext: STANDARD.encode(cipher),
        })
    }

    fn open(&self, member: &str, sealed: &Sealed) -> Result<Tokens> {
        let fail = || {
            anyhow!(
                "the stored tokens of member `{member}` cannot be decrypted: wrong `{}`, or the record was altered",
                env::EARSHOT_TOKEN_KEY
            )
        };
        if sealed.member != member {
            return Err(fail());
        }
        let nonce = STANDARD.decode(&sealed.nonce).map_err(|_| fail())?;
        let cipher = STANDARD.decode(&sealed.ciphertext).map_err(|_| fail())?;
        if nonce.len() != 24 {
            return Err(fail());
        }
        let plain = XChaCha20Poly1305::new(&self.0)
            .decrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: &cipher,
                    aad: member.as_bytes(),
                },
            )
            .map_err(|_| fail())?;
        serde_json::from_slice(&plain).map_err(|_| fail())
    }
}

/// What is stored: nothing in clear but the member id.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Sealed {
    version: u32,
    member: String,
    nonce: String,
    ciphertext: String,
}

/// Where token records live (`--token-store`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum TokenStoreKind {
    /// `state/tokens/<member>.json` in the storage (local folder or GCS).
    #[default]
    Storage,
    /// The `fetcher_tokens` collection in MongoDB.
    Mongodb,
}

/// Where encrypted token records live.
#[derive(Clone)]
pub enum TokenStore {
    /// `state/tokens/<member>.json` in the storage.
    Storage(Storage, TokenKey),
    /// The `fetcher_tokens` collection, one document per member.
    Mongo(mongodb::Database, TokenKey),
}

impl TokenStore {
    /// The token store of `kind`, with the key from the environment (`EARSHOT_TOKEN_KEY` or
    /// `EARSHOT_TOKEN_KEY_FILE`): in `storage`, or in MongoDB's `database` at `mongodb_uri`.
    pub async fn open(
        kind: TokenStoreKind,
        storage: &Storage,
        mongodb_uri: &str,
        database: &str,
    ) -> Result<TokenStore> {
        let key = TokenKey::from_env()?;
        Ok(match kind {
            TokenStoreKind::Storage => TokenStore::Storage(storage.clone(), key),
            TokenStoreKind::Mongodb => TokenStore::Mongo(
                earshot_core::mongo::connect(mongodb_uri, database).await?,
                key,
            ),
        })
    }

    /// Save a member's tokens (atomically: temp + rename, or one document replace).
    pub async fn save(&self, member: &str, tokens: &Tokens) -> Result<()> {
        match self {
            TokenStore::Storage(storage, key) => {
                let sealed = key.seal(member, tokens)?;
                storage
                    .write_private(
                        &token_key(member),
                        Bytes::from(serde_json::to_vec(&sealed)?),
                    )
                    .await?;
            }
            TokenStore::Mongo(db, key) => {
                let sealed = key.seal(member, tokens)?;
                let document = doc! {"_id": member, "version": sealed.version, "member": &sealed.member, "nonce": &sealed.nonce, "ciphertext": &sealed.ciphertext};
                db.collection::<Document>(FETCHER_TOKENS)
                    .replace_one(doc! {"_id": member}, document)
                    .upsert(true)
                    .await
                    .with_context(|| format!("saving the tokens of member `{member}`"))?;
            }
        }
        Ok(())
    }

    /// Delete a member's tokens (a fetch overtaken by their erase withdraws what it saved); deleting
    /// tokens that are not there is no error.
    pub async fn delete(&self, member: &str) -> Result<()> {
        match self {
            TokenStore::Storage(storage, _) => {
                let path = token_key(member);
                if storage.exists(&path).await? {
                    storage.delete(&path).await?;
                }
            }
            TokenStore::Mongo(db, _) => {
                db.collection::<Document>(FETCHER_TOKENS)
                    .delete_one(doc! {"_id": member})
                    .await
                    .with_context(|| format!("deleting the tokens of member `{member}`"))?;
            }
        }
        Ok(())
    }

    /// Load a member's tokens; `None` when the member never connected.
    pub async fn load(&self, member: &str) -> Result<Option<Tokens>> {
        let (sealed, key) = match self {
            TokenStore::Storage(storage, key) => {
                let path = token_key(member);
                if !storage.exists(&path).await? {
                    return Ok(None);
                }
                let bytes = storage.read_all(&path).await?;
                let sealed: Sealed = serde_json::from_slice(&bytes).with_context(|| {
                    format!("`{}` is not a token record", storage.location(&path))
                })?;
                (sealed, key)
            }
            TokenStore::Mongo(db, key) => {
                let Some(document) = db
                    .collection::<Document>(FETCHER_TOKENS)
                    .find_one(doc! {"_id": member})
                    .await?
                else {
                    return Ok(None);
                };
                let sealed = Sealed {
                    version: document.get_i32("version").unwrap_or(1) as u32,
                    member: document.get_str("member").unwrap_or_default().to_string(),
                    nonce: document.get_str("nonce").unwrap_or_default().to_string(),
                    ciphertext: document
                        .get_str("ciphertext")
                        .unwrap_or_default()
                        .to_string(),
                };
                (sealed, key)
            }
        };
        key.open(member, &sealed).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens() -> Tokens {
        Tokens {
            access_token: "BQ-access-secret".into(),
            expires_at: DateTime::from_timestamp(1_730_000_000, 0).unwrap(),
            refresh_token: "AQ-refresh-secret".into(),
            client_id: "client".into(),
            scope: "user-top-read".into(),
        }
    }

    #[test]
    fn sealed_records_hold_no_token_and_open_only_for_their_member_and_key() {
        let key = TokenKey::from_base64(&TokenKey::generate_base64().unwrap()).unwrap();
        let sealed = key.seal("ana", &tokens()).unwrap();
        let stored = serde_json::to_string(&sealed).unwrap();
        assert!(!stored.contains("secret"), "{stored}");
        assert_eq!(key.open("ana", &sealed).unwrap(), tokens());
        assert!(key.open("ben", &sealed).is_err(), "bound to its member");
        let other = TokenKey::from_base64(&TokenKey::generate_base64().unwrap()).unwrap();
        let err = other.open("ana", &sealed).unwrap_err().to_string();
        assert!(err.contains("ana") && !err.contains("secret"), "{err}");
        assert!(!format!("{:?}", tokens()).contains("secret"));
    }

    #[test]
    fn keys_must_be_32_bytes_of_base64() {
        assert!(TokenKey::from_base64("not base64!").is_err());
        assert!(
            TokenKey::from_base64(&STANDARD.encode([0u8; 16]))
                .unwrap_err()
                .to_string()
                .contains("32 bytes")
        );
    }
}
