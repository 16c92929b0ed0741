use std::collections::HashMap;

use base64::Engine as _;
use sha2::Digest as _;

use super::*;
use crate::connect::PKCE_VERIFIER_LEN;
use earshot_state::clock::SystemClock;

#[test]
fn sign_in_is_rspotify_pkce_with_its_token_cache_and_auto_refresh_off() {
    let endpoints = Endpoints {
        api: "http://127.0.0.1:1".into(),
        accounts: "http://127.0.0.1:2".into(),
    };
    let spotify = Spotify::new(
        endpoints,
        Arc::new(SystemClock),
        Budget::new(Duration::ZERO),
    )
    .unwrap();
    let mut client = spotify.pkce_client("app-id", "http://127.0.0.1:8888/callback", None);
    assert!(!client.config.token_cached && !client.config.token_refreshing);
    assert!(client.creds.secret.is_none(), "a public client: no secret");
    let url = url::Url::parse(&client.get_authorize_url(Some(PKCE_VERIFIER_LEN)).unwrap()).unwrap();
    assert_eq!(
        url.as_str().split('?').next(),
        Some("http://127.0.0.1:2/authorize")
    );
    let query: HashMap<String, String> = url.query_pairs().into_owned().collect();
    let verifier = client.verifier.clone().unwrap();
    assert_eq!(verifier.len(), PKCE_VERIFIER_LEN);
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()));
    assert_eq!(query["code_challenge_method"], "S256");
    assert_eq!(query["code_challenge"], challenge);
    assert_eq!(query["state"], client.oauth.state);
    assert!(client.oauth.state.len() >= 16);
    assert_eq!(query["client_id"], "app-id");
    assert_eq!(query["redirect_uri"], "http://127.0.0.1:8888/callback");
    let mut scopes: Vec<&str> = query["scope"].split(' ').collect();
    scopes.sort();
    assert_eq!(scopes, SCOPES.to_vec());
    // Two sign-ins never share a verifier or a state.
    let mut other = spotify.pkce_client("app-id", "http://127.0.0.1:8888/callback", None);
    other.get_authorize_url(Some(PKCE_VERIFIER_LEN)).unwrap();
    assert_ne!(other.verifier, client.verifier);
    assert_ne!(other.oauth.state, client.oauth.state);
}
