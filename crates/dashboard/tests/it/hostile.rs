//! The dashboard against a hostile client (issue 21): a burst of wrong passwords, a reused CSRF token,
//! guessing spread over many addresses, a forged `X-Forwarded-For`, a foreign Host (DNS rebinding), a
//! proxied request to a dashboard without a password, a half-sent request, and hostile `next=` values.

use crate::common;

use std::time::{Duration, Instant};

use common::{client, login_form, serve_empty};
use dashboard::auth::Auth;
use dashboard::exposure::Network;
use dashboard::server::ServerLimits;
use dashboard::throttle::LoginLimits;
use reqwest::StatusCode;
use reqwest::header::{LOCATION, RETRY_AFTER, SET_COOKIE};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

mod sessions;

const PASSWORD: &str = "correct horse battery";

fn auth(limits: LoginLimits) -> Auth {
    Auth::new(
        &dashboard::auth::hash_password(PASSWORD).unwrap(),
        "the test hash",
        false,
    )
    .unwrap()
    .with_login_limits(limits)
}

/// A login form: its CSRF cookie (`name=value`) and token.
async fn form(base: &str) -> (String, String) {
    login_form(&client(), base).await
}

/// One wrong guess from each of `addresses` (named by `X-Forwarded-For`), in turn: the statuses.
async fn guesses(base: &str, addresses: &[String]) -> Vec<StatusCode> {
    let mut answers = Vec::new();
    for address in addresses {
        answers.push(
            post(base, &form(base).await, "a guess", Some(address))
                .await
                .status(),
        );
    }
    answers
}

/// Post the login form, optionally through a proxy that names `forwarded_for` as the client.
async fn post(
    base: &str,
    (nonce, token): &(String, String),
    password: &str,
    forwarded_for: Option<&str>,
) -> reqwest::Response {
    let mut request = client()
        .post(format!("{base}/login"))
        .header("cookie", nonce)
        .form(&[("password", password), ("csrf", token)]);
    if let Some(ip) = forwarded_for {
        request = request.header("x-forwarded-for", ip);
    }
    request.send().await.unwrap()
}

fn statuses(responses: &[StatusCode], status: StatusCode) -> usize {
    responses.iter().filter(|s| **s == status).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_wrong_passwords_gets_at_most_five_checks() {
    let (base, _dir) = serve_empty(
        "dashboard_burst",
        Some(auth(LoginLimits::default())),
        &[],
        ServerLimits::default(),
    )
    .await;
    let mut forms = Vec::new();
    for _ in 0..30 {
        forms.push(form(&base).await);
    }
    let burst = forms.iter().enumerate().map(|(i, form)| {
        let base = base.clone();
        async move {
            post(&base, form, &format!("guess {i}"), None)
                .await
                .status()
        }
    });
    let answers: Vec<StatusCode> = futures::future::join_all(burst).await;
    let checked = statuses(&answers, StatusCode::UNAUTHORIZED);
    assert!(
        (1..=5).contains(&checked),
        "{checked} passwords checked: {answers:?}"
    );
    assert_eq!(
        checked
            + statuses(&answers, StatusCode::TOO_MANY_REQUESTS)
            + statuses(&answers, StatusCode::SERVICE_UNAVAILABLE),
        30,
        "every other attempt is throttled (429) or finds the checks busy (503): {answers:?}"
    );
    // The right password is refused too while the address is throttled.
    let response = post(&base, &form(&base).await, PASSWORD, None).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers().contains_key(RETRY_AFTER));
}

#[tokio::test]
async fn a_csrf_token_is_spent_by_its_first_use() {
    let (base, _dir) = serve_empty(
        "dashboard_csrf_once",
        Some(auth(LoginLimits::default())),
        &[],
        ServerLimits::default(),
    )
    .await;
    let form = form(&base).await;
    assert_eq!(
        post(&base, &form, "a wrong one", None).await.status(),
        StatusCode::UNAUTHORIZED
    );
    let again = post(&base, &form, PASSWORD, None).await;
    assert_eq!(
        again.status(),
        StatusCode::FORBIDDEN,
        "even with the right password"
    );
    assert!(
        again
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .all(|c| !c.to_str().unwrap().starts_with("earshot_session=")),
        "no session from a spent token"
    );
}

#[tokio::test]
async fn the_budget_of_wrong_passwords_holds_across_fifty_addresses() {
    let budget = 10;
    let limits = LoginLimits {
        wrong_per_hour: budget,
        ..LoginLimits::default()
    };
    let proxies: Vec<Network> = vec!["127.0.0.1".parse().unwrap()];
    let (base, _dir) = serve_empty(
        "dashboard_budget",
        Some(auth(limits)),
        &proxies,
        ServerLimits::default(),
    )
    .await;
    // A friend signs in first.
    let signed_in = post(&base, &form(&base).await, PASSWORD, Some("192.0.2.200")).await;
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
    let session = signed_in
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|c| c.to_str().unwrap().split(';').next().unwrap().to_string())
        .find(|c| c.starts_with("earshot_session="))
        .unwrap();
    // Fifty guessers, half IPv4 addresses and half IPv6 /64s, one guess each.
    let addresses: Vec<String> = (0..50)
        .map(|i| {
            if i % 2 == 0 {
                format!("198.51.100.{i}")
            } else {
                format!("2001:db8:{i:x}::1")
            }
        })
        .collect();
    let answers = guesses(&base, &addresses).await;
    assert_eq!(
        statuses(&answers, StatusCode::UNAUTHORIZED),
        budget,
        "{answers:?}"
    );
    assert_eq!(
        statuses(&answers, StatusCode::TOO_MANY_REQUESTS),
        50 - budget
    );
    // Spent: nobody signs in, not even with the password; the friend's session still opens pages.
    let response = post(&base, &form(&base).await, PASSWORD, Some("203.0.113.1")).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = response.headers()[RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=3600).contains(&wait), "{wait}");
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("paused for everyone")
    );
    let page = client()
        .get(format!("{base}/status"))
        .header("cookie", &session)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
}

#[tokio::test]
async fn forwarded_addresses_count_only_through_a_trusted_proxy() {
    // Not trusted: a client that writes a new X-Forwarded-For each time is still one client.
    let (base, _dir) = serve_empty(
        "dashboard_xff_untrusted",
        Some(auth(LoginLimits::default())),
        &[],
        ServerLimits::default(),
    )
    .await;
    let forged: Vec<String> = (0..6).map(|i| format!("203.0.113.{i}")).collect();
    let answers = guesses(&base, &forged).await;
    assert_eq!(
        statuses(&answers, StatusCode::UNAUTHORIZED),
        5,
        "{answers:?}"
    );
    assert_eq!(answers[5], StatusCode::TOO_MANY_REQUESTS);

    // Trusted: addresses of one IPv6 /64 are one client; another /64 is another.
    let proxies: Vec<Network> = vec!["127.0.0.0/8".parse().unwrap()];
    let (base, _dir) = serve_empty(
        "dashboard_xff_trusted",
        Some(auth(LoginLimits::default())),
        &proxies,
        ServerLimits::default(),
    )
    .await;
    let same_64: Vec<String> = (1..=6).map(|i| format!("2001:db8:aa:bb::{i}")).collect();
    let answers = guesses(&base, &same_64).await;
    assert_eq!(
        statuses(&answers, StatusCode::UNAUTHORIZED),
        5,
        "{answers:?}"
    );
    assert_eq!(answers[5], StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        post(
            &base,
            &form(&base).await,
            "a guess",
            Some("2001:db8:aa:cc::1")
        )
        .await
        .status(),
        StatusCode::UNAUTHORIZED,
        "another /64"
    );
}

/// One raw HTTP/1.1 request: the status line and the body.
async fn raw(base: &str, head: &str) -> (String, String) {
    let address = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let status = response.lines().next().unwrap_or_default().to_string();
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

#[tokio::test]
async fn a_foreign_host_and_a_proxied_request_without_a_password_are_refused() {
    let (base, _dir) = serve_empty("dashboard_hosts", None, &[], ServerLimits::default()).await;
    let port = base.rsplit(':').next().unwrap();
    for host in [
        format!("127.0.0.1:{port}"),
        format!("localhost:{port}"),
        format!("[::1]:{port}"),
    ] {
        let (status, body) = raw(
            &base,
            &format!("GET /status HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
        )
        .await;
        assert!(status.contains(" 200 "), "{host}: {status}");
        assert!(body.contains("<html"), "{host}");
    }
    for host in [
        "rebind.attacker.example".to_string(),
        format!("rebind.attacker.example:{port}"),
        "127.0.0.1".to_string(),
    ] {
        let (status, body) = raw(
            &base,
            &format!("GET /status HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"),
        )
        .await;
        assert!(status.contains(" 421 "), "{host}: {status}");
        assert!(
            !body.contains("<html") && !body.contains("ana.mx"),
            "{body}"
        );
    }
    for header in ["X-Forwarded-For: 192.0.2.1", "Forwarded: for=192.0.2.1"] {
        let (status, body) = raw(
            &base,
            &format!(
                "GET /status HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{header}\r\nConnection: close\r\n\r\n"
            ),
        )
        .await;
        assert!(status.contains(" 403 "), "{header}: {status}");
        assert!(body.contains("no group password"), "{body}");
    }
}

#[tokio::test]
async fn a_half_sent_request_is_disconnected_within_the_timeout() {
    let limits = ServerLimits {
        header_read_timeout: Duration::from_secs(1),
        ..ServerLimits::default()
    };
    let (base, _dir) = serve_empty("dashboard_slow", None, &[], limits).await;
    let port = base.rsplit(':').next().unwrap();
    let mut stream = tokio::net::TcpStream::connect(base.trim_start_matches("http://"))
        .await
        .unwrap();
    let started = Instant::now();
    stream
        .write_all(format!("GET /status HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-Slow: ").as_bytes())
        .await
        .unwrap();
    let mut rest = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut rest)).await;
    let elapsed = started.elapsed();
    assert!(read.is_ok(), "still open after 10 s");
    assert!(
        elapsed >= Duration::from_millis(900) && elapsed < Duration::from_secs(5),
        "closed after {elapsed:?}"
    );
    let text = String::from_utf8_lossy(&rest);
    assert!(!text.contains(" 200 "), "{text}");
    // An idle kept-alive connection is closed the same way.
    let mut idle = tokio::net::TcpStream::connect(base.trim_start_matches("http://"))
        .await
        .unwrap();
    let started = Instant::now();
    let read = tokio::time::timeout(Duration::from_secs(10), idle.read_to_end(&mut rest)).await;
    assert!(
        read.is_ok() && started.elapsed() < Duration::from_secs(5),
        "an idle connection is closed"
    );
}

#[test]
fn only_a_same_site_path_survives_the_login_redirect() {
    let kept = [
        "/",
        "/status",
        "/member/ana.mx?period=2024-10",
        "/track/abc%20def",
        "/pair/a/b#top",
    ];
    for next in kept {
        assert_eq!(dashboard::login::safe_next(Some(next)), next, "{next:?}");
    }
    let hostile = [
        "//evil.example",
        "/\t/evil.example",
        "/%09/evil.example",
        "/\n/evil.example",
        "/%0a/evil.example",
        "/\r//evil.example",
        "/\\evil.example",
        "/%5cevil.example",
        "/%2f/evil.example",
        "/%2F%2Fevil.example",
        "\\\\evil.example",
        "https://evil.example/",
        "evil.example",
        "javascript:alert(1)",
        " /status",
        "",
        "/status\u{0}",
        "/\u{7f}/evil.example",
        "/status\\",
    ];
    for next in hostile {
        assert_eq!(dashboard::login::safe_next(Some(next)), "/", "{next:?}");
    }
    assert_eq!(dashboard::login::safe_next(None), "/");
    let long = format!("/{}", "a".repeat(4096));
    assert_eq!(dashboard::login::safe_next(Some(&long)), "/");
}

#[tokio::test]
async fn a_hostile_next_is_not_followed_after_signing_in() {
    let (base, _dir) = serve_empty(
        "dashboard_next",
        Some(auth(LoginLimits::default())),
        &[],
        ServerLimits::default(),
    )
    .await;
    let (nonce, token) = form(&base).await;
    let response = client()
        .post(format!("{base}/login"))
        .header("cookie", nonce)
        .form(&[
            ("password", PASSWORD),
            ("csrf", &token),
            ("next", "/\t/evil.example"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()[LOCATION], "/");
}

#[tokio::test]
async fn secure_cookies_carry_hsts() {
    let secure = Auth::new(
        &dashboard::auth::hash_password(PASSWORD).unwrap(),
        "the test hash",
        true,
    )
    .unwrap();
    let (base, _dir) =
        serve_empty("dashboard_hsts", Some(secure), &[], ServerLimits::default()).await;
    let response = client().get(format!("{base}/login")).send().await.unwrap();
    assert!(
        response.headers()[SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("; Secure")
    );
    assert_eq!(
        response.headers()["strict-transport-security"],
        "max-age=31536000"
    );
}

#[test]
fn cookies_are_secure_by_default_off_loopback() {
    use clap::Parser as _;
    let secure = |args: &[&str]| {
        let mut argv = vec!["dashboard"];
        argv.extend_from_slice(args);
        dashboard::Cli::try_parse_from(argv)
            .unwrap()
            .serve
            .secure_cookies()
    };
    assert!(
        !secure(&[]),
        "loopback, no proxy: plain HTTP on this machine"
    );
    assert!(secure(&["--bind", "0.0.0.0:8080"]));
    assert!(
        secure(&["--public-host", "music.example.org"]),
        "behind a proxy"
    );
    assert!(secure(&["--secure-cookie"]));
    assert!(!secure(&[
        "--bind",
        "192.168.1.20:8080",
        "--insecure-cookie"
    ]));
    assert!(
        dashboard::Cli::try_parse_from(["dashboard", "--secure-cookie", "--insecure-cookie"])
            .is_err()
    );
}

// ---- Issue 37: sessions on the server, no password only on purpose, a budget one client cannot
// spend alone, one client header, connections per client.
