//! Sessions, a dashboard without a password, and clients that cannot crowd each other out.

use super::*;

/// A page's status with a cookie.
async fn status_with(base: &str, cookie: &str) -> StatusCode {
    common::get_with(base, "/status", cookie).await.status()
}

/// A dashboard on `db` (and `dir`'s storage) with this password, within `limits`.
async fn serve_on(
    db: &mongodb::Database,
    dir: &std::path::Path,
    hash: &str,
    limits: LoginLimits,
) -> String {
    let stores = earshot_state::Stores {
        storage: earshot_core::Storage::local(dir),
        db: db.clone(),
        group: earshot_tests::fixture_group_config(),
    };
    let auth = Auth::new(hash, "the test hash", false)
        .unwrap()
        .with_login_limits(limits);
    common::serve_stores(stores, Some(auth)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sessions_end_at_sign_out_and_at_a_new_password_and_are_each_their_own() {
    let db = earshot_tests::fresh_database("dashboard_sessions").await;
    let dir = tempfile::tempdir().unwrap();
    let hash = dashboard::auth::hash_password(PASSWORD).unwrap();
    let base = serve_on(&db, dir.path(), &hash, LoginLimits::default()).await;
    // Two sign-ins in the same second: two sessions.
    let (one, two) = futures::future::join(
        async { post(&base, &form(&base).await, PASSWORD, None).await },
        async { post(&base, &form(&base).await, PASSWORD, None).await },
    )
    .await;
    let (one, two) = (
        common::session_of(&one).unwrap(),
        common::session_of(&two).unwrap(),
    );
    assert_ne!(one, two, "each sign-in its own session");
    assert!(
        one.len() >= "earshot_session=".len() + 22,
        "at least 128 bits: {one}"
    );
    assert_eq!(status_with(&base, &one).await, StatusCode::OK);
    // The id is not what the store keeps.
    let id = one.trim_start_matches("earshot_session=");
    let stored: Vec<mongodb::bson::Document> = {
        use futures::TryStreamExt as _;
        db.collection(earshot_core::mongo::DASHBOARD_SESSIONS)
            .find(mongodb::bson::doc! {})
            .await
            .unwrap()
            .try_collect()
            .await
            .unwrap()
    };
    assert_eq!(stored.len(), 2);
    assert!(!format!("{stored:?}").contains(id), "{stored:?}");
    // Signing out with `one`: a copy of it opens nothing afterwards; `two` still does.
    let out = common::sign_out(&base, &one).await;
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    let after = common::get_with(&base, "/status", &one).await;
    assert_eq!(after.status(), StatusCode::SEE_OTHER);
    assert!(
        after.headers()[LOCATION]
            .to_str()
            .unwrap()
            .starts_with("/login")
    );
    assert_eq!(status_with(&base, &two).await, StatusCode::OK);
    // A second dashboard process on the same database shares the sessions (and a restart keeps
    // them); one started with a new group password ends every session of the old one.
    let same = serve_on(&db, dir.path(), &hash, LoginLimits::default()).await;
    assert_eq!(status_with(&same, &two).await, StatusCode::OK);
    let mut args = vec!["dashboard".to_string()];
    let new_hash = dashboard::auth::hash_password("a new password").unwrap();
    let hash_file = dir.path().join("new.hash");
    std::fs::write(&hash_file, &new_hash).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = earshot_testkit::fixtures::fixtures_dir().join("group.toml");
    args.extend(
        [
            "--password-hash-file",
            hash_file.to_str().unwrap(),
            "--storage",
            dir.path().to_str().unwrap(),
            "--mongodb-uri",
            earshot_testkit::mongo_server::MongoServer::shared().uri(),
            "--database",
            db.name(),
            "--group-config",
            config.to_str().unwrap(),
            "--bind",
            &format!("127.0.0.1:{port}"),
        ]
        .map(str::to_string),
    );
    use clap::Parser as _;
    tokio::spawn(dashboard::run(
        dashboard::Cli::try_parse_from(args).unwrap(),
    ));
    let renewed = format!("http://127.0.0.1:{port}");
    let mut answer = None;
    for _ in 0..100 {
        if let Ok(response) = client().get(format!("{renewed}/login")).send().await {
            answer = Some(response.status());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        answer,
        Some(StatusCode::OK),
        "the renewed dashboard listens"
    );
    assert_eq!(status_with(&renewed, &two).await, StatusCode::SEE_OTHER);
    assert_eq!(
        status_with(&same, &two).await,
        StatusCode::SEE_OTHER,
        "ended for every process"
    );
}

#[test]
fn without_a_password_the_dashboard_starts_only_when_told_and_only_on_loopback() {
    let run = |args: &[&str]| {
        std::process::Command::new(earshot_tests::binary("dashboard"))
            .args(args)
            .env_remove("EARSHOT_DASHBOARD_PASSWORD_HASH")
            .env_remove("EARSHOT_DASHBOARD_PASSWORD_HASH_FILE")
            .env("MONGODB_URI", "mongodb://127.0.0.1:1")
            .output()
            .unwrap()
    };
    let out = run(&["--bind", "127.0.0.1:0"]);
    assert_ne!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--no-password") && stderr.contains("no group password"),
        "{stderr}"
    );
    let out = run(&["--bind", "192.0.2.1:8080", "--no-password"]);
    assert_ne!(out.status.code(), Some(0));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--no-password"), "{stderr}");
    dashboard::check_no_password("127.0.0.1:8080".parse().unwrap(), false, true).unwrap();
    dashboard::check_no_password("[::1]:8080".parse().unwrap(), false, true).unwrap();
    dashboard::check_no_password("0.0.0.0:8080".parse().unwrap(), true, false).unwrap();
    assert!(
        dashboard::check_no_password("0.0.0.0:8080".parse().unwrap(), false, true)
            .unwrap_err()
            .to_string()
            .contains("loopback")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_address_guessing_at_its_pace_cannot_lock_out_another() {
    // A budget of 4 wrong passwords an hour: one client's share is 1.
    let proxies: Vec<Network> = vec!["127.0.0.1".parse().unwrap()];
    let (base, _dir) = serve_empty(
        "dashboard_share",
        Some(auth(LoginLimits::with_budget(4))),
        &proxies,
        ServerLimits::default(),
    )
    .await;
    let guesser: Vec<String> = vec!["198.51.100.7".to_string(); 5];
    let answers = guesses(&base, &guesser).await;
    assert_eq!(
        statuses(&answers, StatusCode::UNAUTHORIZED),
        1,
        "{answers:?}"
    );
    assert_eq!(statuses(&answers, StatusCode::TOO_MANY_REQUESTS), 4);
    let friend = post(&base, &form(&base).await, PASSWORD, Some("203.0.113.8")).await;
    assert_eq!(
        friend.status(),
        StatusCode::SEE_OTHER,
        "the friend still signs in"
    );
    assert!(common::session_of(&friend).is_some());
}

#[tokio::test]
async fn a_post_without_a_csrf_pair_counts_nowhere() {
    let (base, _dir) = serve_empty(
        "dashboard_csrf_first",
        Some(auth(LoginLimits::default())),
        &[],
        ServerLimits::default(),
    )
    .await;
    // A cross-site page auto-posting the form: no cookie, no token (or a made-up one).
    for token in ["", "forged", "1.abc"] {
        for _ in 0..3 {
            let response = client()
                .post(format!("{base}/login"))
                .form(&[("password", "a guess"), ("csrf", token)])
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::FORBIDDEN);
        }
    }
    // None of the nine counted: the visitor signs in at once.
    let response = post(&base, &form(&base).await, PASSWORD, None).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn in_x_real_ip_mode_a_clients_own_x_forwarded_for_is_ignored() {
    let db = earshot_tests::fresh_database("dashboard_real_ip").await;
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let proxies: Vec<Network> = vec!["127.0.0.1".parse().unwrap()];
    let state = dashboard::AppState {
        base: String::new(),
        stores: earshot_state::Stores {
            storage: earshot_core::Storage::local(dir.path()),
            db,
            group: earshot_tests::fixture_group_config(),
        },
        auth: Some(auth(LoginLimits::default())),
        exposure: dashboard::exposure::Exposure::loopback(address.port(), true)
            .with_trusted_proxies(&proxies)
            .with_client_ip_header(dashboard::exposure::ClientIpHeader::XRealIp),
        clock: std::sync::Arc::new(earshot_state::clock::SystemClock),
        spotify: None,
        listen_limiter: Default::default(),
        sign_ins: Default::default(),
    };
    tokio::spawn(dashboard::serve_with(
        listener,
        vec![std::sync::Arc::new(state)],
        ServerLimits::default(),
    ));
    let base = format!("http://{address}");
    // The proxy sets X-Real-IP to the one client; the client writes a new X-Forwarded-For each time.
    let mut answers = Vec::new();
    for i in 0..6 {
        let (nonce, token) = form(&base).await;
        answers.push(
            client()
                .post(format!("{base}/login"))
                .header("cookie", nonce)
                .header("x-real-ip", "198.51.100.30")
                .header("x-forwarded-for", format!("203.0.113.{i}"))
                .form(&[("password", "a guess"), ("csrf", token.as_str())])
                .send()
                .await
                .unwrap()
                .status(),
        );
    }
    assert_eq!(
        statuses(&answers, StatusCode::UNAUTHORIZED),
        5,
        "{answers:?}"
    );
    assert_eq!(answers[5], StatusCode::TOO_MANY_REQUESTS);
}

/// A connection to `base` from the loopback address `from`, with a small receive buffer.
async fn connect_from(base: &str, from: &str) -> tokio::net::TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket.bind(format!("{from}:0").parse().unwrap()).unwrap();
    socket
        .connect(base.trim_start_matches("http://").parse().unwrap())
        .await
        .unwrap()
}

/// One page fetched over a fresh connection from `from`: the status line, or why not.
async fn page_from(base: &str, from: &str) -> Result<String, String> {
    let port = base.rsplit(':').next().unwrap();
    let mut stream = connect_from(base, from).await;
    stream
        .write_all(
            format!("GET /login HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .await
        .map_err(|e| e.to_string())?;
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .await
        .map_err(|e| e.to_string())?;
    let text = String::from_utf8_lossy(&response);
    Ok(text.lines().next().unwrap_or_default().to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_unread_connections_of_one_client_cannot_stop_another_clients_page() {
    let limits = ServerLimits {
        max_connections: 4,
        connections_per_client: 2,
        idle_timeout: Duration::from_secs(1),
        write_timeout: Duration::from_secs(1),
        ..ServerLimits::default()
    };
    let (base, _dir) = serve_empty(
        "dashboard_connections",
        Some(auth(LoginLimits::default())),
        &[],
        limits,
    )
    .await;
    let port = base.rsplit(':').next().unwrap().to_string();
    // 127.0.0.1 opens six connections and sends nothing: two are kept, four closed at once.
    let mut idle = Vec::new();
    for _ in 0..6 {
        idle.push(connect_from(&base, "127.0.0.1").await);
    }
    let started = Instant::now();
    let page = tokio::time::timeout(Duration::from_secs(5), page_from(&base, "127.0.0.2"))
        .await
        .expect("another client is served while the first holds its share");
    assert!(page.unwrap().contains(" 200 "));
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
    // An idle kept-alive connection is closed after the idle timeout.
    let mut kept = connect_from(&base, "127.0.0.3").await;
    kept.write_all(format!("GET /login HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let started = Instant::now();
    let mut all = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), kept.read_to_end(&mut all)).await;
    assert!(closed.is_ok(), "still open after 5 s");
    assert!(String::from_utf8_lossy(&all).starts_with("HTTP/1.1 200"));
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );
    drop(idle);
    // 127.0.0.4 and 127.0.0.6 ask for thousands of pages on both their connections (every slot of
    // the server) and read none: the server's writes stall, the write timeout closes them, and
    // another client is served.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut stalled = Vec::new();
    for from in ["127.0.0.4", "127.0.0.4", "127.0.0.6", "127.0.0.6"] {
        let mut stream = connect_from(&base, from).await;
        let requests =
            format!("GET /login HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n").repeat(3000);
        tokio::spawn(async move {
            let _ = stream.write_all(requests.as_bytes()).await;
            // Hold the connection open, unread.
            tokio::time::sleep(Duration::from_secs(30)).await;
            drop(stream);
        });
        stalled.push(());
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let page = tokio::time::timeout(Duration::from_secs(8), page_from(&base, "127.0.0.5"))
        .await
        .expect("a client that never reads does not hold the server");
    assert!(page.unwrap().contains(" 200 "));
}
