//! Signed-in sessions: signing in (by password or through the mock Spotify), forms and sign-out.

use super::*;

/// The session cookie (`earshot_session=<id>`) a response set, if any (not its clearing).
pub fn session_of(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .map(|c| c.to_str().unwrap().split(';').next().unwrap().to_string())
        .find(|c| c.starts_with("earshot_session=") && c.len() > "earshot_session=".len())
}

/// Sign out as the sign-out button of a page does: the page's form, with its token, posted with the
/// session's cookie (`name=value`). Also checks that a post without the token ends nothing.
pub async fn sign_out(base: &str, cookie: &str) -> reqwest::Response {
    let http = client();
    let page = get_with(base, "/status", cookie)
        .await
        .text()
        .await
        .unwrap();
    let token = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the sign-out form carries its token")
        .to_string();
    let forged = http
        .post(format!("{base}/logout"))
        .header("cookie", cookie)
        .form(&[("csrf", "not the token")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        forged.status(),
        reqwest::StatusCode::FORBIDDEN,
        "a cross-site sign-out"
    );
    http.post(format!("{base}/logout"))
        .header("cookie", cookie)
        .form(&[("csrf", token.as_str())])
        .send()
        .await
        .unwrap()
}

/// `GET base + path` with a cookie (`name=value`), not following redirects.
pub async fn get_with(base: &str, path: &str, cookie: &str) -> reqwest::Response {
    client()
        .get(format!("{base}{path}"))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
}

/// A dashboard with a group password and "Sign in with Spotify" against the mock Spotify, on these
/// stores: the base URL, the mock, the token store and its key (base64, for `data-fetcher`).
pub async fn serve_sign_in_on(
    storage: earshot_core::Storage,
    db: mongodb::Database,
    mut group: earshot_core::GroupConfig,
) -> (
    String,
    std::sync::Arc<earshot_testkit::spotify::MockSpotify>,
    earshot_spotify::tokens::TokenStore,
    String,
) {
    use earshot_spotify::api::{Budget, Endpoints, Spotify};
    use earshot_spotify::tokens::{TokenKey, TokenStore};
    use std::sync::Arc;
    // The group's one Spotify app: the mock's.
    group.apps.push(earshot_core::config::AppConfig {
        name: "main".into(),
        client_id: earshot_testkit::spotify::DEFAULT_CLIENT_ID.into(),
        extended_quota: false,
    });
    let listening = earshot_testkit::fixtures::Listening::fixture_group().unwrap();
    let mock = Arc::new(
        earshot_testkit::spotify::MockSpotify::start(&listening, Default::default())
            .await
            .unwrap(),
    );
    let key_text = TokenKey::generate_base64().unwrap();
    let key = TokenKey::from_base64(&key_text).unwrap();
    let tokens = TokenStore::Storage(storage.clone(), key);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let clock: Arc<dyn earshot_state::clock::Clock> =
        Arc::new(earshot_tests::MockClock(Arc::clone(&mock)));
    let endpoints = Endpoints {
        api: mock.base_url(),
        accounts: mock.base_url(),
    };
    let sign_in = dashboard::pages::connect::SpotifySignIn {
        spotify: Spotify::new(
            endpoints,
            clock.clone(),
            Budget::new(std::time::Duration::from_secs(30)),
        )
        .unwrap(),
        tokens: tokens.clone(),
        public_url: dashboard::pages::connect::check_public_url(&format!("http://{address}"))
            .unwrap(),
    };
    let auth = dashboard::auth::Auth::new(
        &dashboard::auth::hash_password("the group password").unwrap(),
        "the test hash",
        false,
    )
    .unwrap();
    let state = dashboard::AppState {
        base: String::new(),
        stores: earshot_state::Stores {
            storage: storage.clone(),
            db: db.clone(),
            group,
        },
        auth: Some(auth),
        exposure: dashboard::exposure::Exposure::loopback(address.port(), true),
        clock,
        spotify: Some(Arc::new(sign_in)),
        listen_limiter: Default::default(),
        sign_ins: Default::default(),
    };
    tokio::spawn(dashboard::serve_with(
        listener,
        vec![Arc::new(state)],
        dashboard::server::ServerLimits::default(),
    ));
    (format!("http://{address}"), mock, tokens, key_text)
}

/// The CSRF token of the forms of `cookie`'s session, read from a page as a browser would.
pub async fn form_token(base: &str, cookie: &str) -> String {
    let page = get_with(base, "/status", cookie)
        .await
        .text()
        .await
        .unwrap();
    page.split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a signed-in page's forms carry the token")
        .to_string()
}

/// POST a form to `base + path` with a cookie, not following redirects.
pub async fn post_form(
    base: &str,
    path: &str,
    cookie: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    client()
        .post(format!("{base}{path}"))
        .header("cookie", cookie)
        .form(fields)
        .send()
        .await
        .unwrap()
}

/// [`crawl`] signed in with `cookie`.
pub async fn crawl_as(
    base: &str,
    start: &[&str],
    cookie: &str,
) -> Vec<(String, reqwest::StatusCode, String)> {
    crawl_with(base, start, Some(cookie)).await
}

/// `GET /connect` as `member`'s browser: the mock's consent, then the URL Spotify sends them back to.
pub async fn spotify_consent(
    base: &str,
    mock: &earshot_testkit::spotify::MockSpotify,
    member: &str,
) -> String {
    let start = client()
        .get(format!("{base}/connect"))
        .send()
        .await
        .unwrap();
    assert_eq!(start.status(), reqwest::StatusCode::SEE_OTHER);
    let authorize = start.headers()[reqwest::header::LOCATION]
        .to_str()
        .unwrap()
        .to_string();
    assert!(authorize.starts_with(&mock.base_url()), "{authorize}");
    assert!(
        authorize.contains("code_challenge_method=S256")
            && authorize.contains(&format!(
                "redirect_uri={}",
                url::form_urlencoded::byte_serialize(format!("{base}/connect/callback").as_bytes())
                    .collect::<String>()
            )),
        "{authorize}"
    );
    mock.browser_authorize(&authorize, member)
        .await
        .unwrap()
        .to_string()
}

/// Sign in as `member` through the mock: the session cookie (`earshot_session=…`).
pub async fn signed_in_as(
    base: &str,
    mock: &earshot_testkit::spotify::MockSpotify,
    member: &str,
) -> String {
    let back = spotify_consent(base, mock, member).await;
    let landed = client().get(&back).send().await.unwrap();
    assert_eq!(landed.status(), reqwest::StatusCode::SEE_OTHER);
    session_of(&landed).expect("a session")
}
