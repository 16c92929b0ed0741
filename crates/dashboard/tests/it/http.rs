//! The dashboard over HTTP: every page's status code and headers, escaping, the recap's answers, and the
//! group password (login, CSRF, wrong passwords, the rate limit, sessions).

use crate::common;

use common::{PERIOD, SNAPSHOT, client, hostile_track, login_form, serve};
use dashboard::CONTENT_SECURITY_POLICY;
use earshot_testkit::fixtures::fact;
use reqwest::StatusCode;
use reqwest::header::{CONTENT_SECURITY_POLICY as CSP, LOCATION, RETRY_AFTER, SET_COOKIE};

mod your_data;

mod sign_in;

async fn get(base: &str, path: &str) -> (StatusCode, reqwest::header::HeaderMap, String) {
    let response = client().get(format!("{base}{path}")).send().await.unwrap();
    let (status, headers) = (response.status(), response.headers().clone());
    (status, headers, response.text().await.unwrap())
}

#[tokio::test]
async fn pages_answer_with_the_right_status_headers_and_escaping() {
    let served = serve("dashboard_http", None).await;
    let base = served.base.as_str();
    let hostile = hostile_track(&served.db).await;
    let ok_pages = [
        "/".to_string(),
        format!("/?period={PERIOD}"),
        "/member/ana.mx".into(),
        format!("/member/emi?period={PERIOD}"),
        "/pair/ana.mx/ben_k".into(),
        format!("/track/{hostile}"),
        "/artist/QMypDlT7lOVaHS0dG1BoEK".into(),
        format!("/recap?period={PERIOD}"),
        "/status".into(),
    ];
    for path in &ok_pages {
        let (status, headers, body) = get(base, path).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        assert_eq!(headers[CSP], CONTENT_SECURITY_POLICY, "{path}");
        assert_eq!(headers["x-content-type-options"], "nosniff", "{path}");
        assert!(
            headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/html"),
            "{path}"
        );
        assert!(
            !body.contains("<script"),
            "{path}: no script, and no unescaped name"
        );
        assert!(!body.contains(" style="), "{path}: no inline style");
        // Each page says what it shows: the status its heading, a period page its period selected,
        // every other page the run it reads.
        let shows = if path == "/status" {
            "<h1>Status</h1>".to_string()
        } else if path.contains("period=") {
            format!("<option value=\"{PERIOD}\" selected>")
        } else {
            SNAPSHOT.to_string()
        };
        assert!(body.contains(&shows), "{path} does not show `{shows}`");
    }
    // The hostile name is text on its track page and in Ana's pages.
    let (_, _, track) = get(base, &format!("/track/{hostile}")).await;
    // The page names it by artist and cleaned name (`… - <script>alert`, the converter's
    // artist_song_name): escaped, it is text.
    assert!(
        track.contains("<h1>Kōji &amp; The Waves - &lt;script&gt;alert</h1>"),
        "{track}"
    );
    // Names with emoji and accents arrive as they are (the browser draws them).
    let (_, _, group) = get(base, "/").await;
    assert!(group.contains("Emi 🎧") && group.contains("Chloé"));
    assert!(group.contains("<svg"), "charts are inline SVG");
    assert!(group.contains("Taste match"));

    for (path, status) in [
        ("/member/nobody", StatusCode::NOT_FOUND),
        ("/pair/ana.mx/nobody", StatusCode::NOT_FOUND),
        ("/pair/ana.mx/ana.mx", StatusCode::NOT_FOUND),
        ("/track/no-such-track", StatusCode::NOT_FOUND),
        ("/artist/no-such-artist", StatusCode::NOT_FOUND),
        ("/no/such/page", StatusCode::NOT_FOUND),
        ("/?period=2024-13", StatusCode::BAD_REQUEST),
        (
            "/member/ana.mx?period=last-tuesday",
            StatusCode::BAD_REQUEST,
        ),
        ("/recap?period=20244", StatusCode::BAD_REQUEST),
        ("/?period=2023", StatusCode::NOT_FOUND),
        ("/recap?period=2024-09", StatusCode::NOT_FOUND),
    ] {
        let (got, headers, body) = get(base, path).await;
        assert_eq!(got, status, "{path}: {body}");
        assert_eq!(headers[CSP], CONTENT_SECURITY_POLICY, "{path}");
        assert!(body.contains("<h1>"), "{path}: an error page for people");
    }
    let (_, _, bad) = get(base, "/?period=2024-13").await;
    assert!(bad.contains("`2024-13` is not a period"), "{bad}");
    let (_, _, missing) = get(base, "/recap?period=2024-09").await;
    assert!(
        missing.contains("analytics --period 2024-09"),
        "says what to run: {missing}"
    );

    // A pair is one page whichever way round it is asked for.
    let (status, headers, _) = get(base, "/pair/ben_k/ana.mx").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers[LOCATION], "/pair/ana.mx/ben_k");
    // The recap without a period goes to the newest one recapped.
    let (status, headers, _) = get(base, "/recap").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers[LOCATION], format!("/recap?period={PERIOD}"));
    // Without a password there is nothing to sign in to.
    let (status, headers, _) = get(base, "/login").await;
    assert_eq!(
        (status, &headers[LOCATION]),
        (StatusCode::SEE_OTHER, &"/".parse().unwrap())
    );
    let (status, headers, css) = get(base, "/static/style.css").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/css")
    );
    assert!(css.contains("figure.chart"));

    // A track whose artist has no Spotify id (imported, not enriched, or removed from Spotify) names
    // the artist without linking to an artist page that cannot exist.
    use mongodb::bson::{Bson, Document, doc};
    served
        .db
        .collection::<Document>(earshot_core::mongo::TRACKS)
        .update_one(
            doc! {"_id": &hostile},
            doc! {"$set": {"artist_ids": [Bson::Null]}},
        )
        .await
        .unwrap();
    let (status, _, track) = get(base, &format!("/track/{hostile}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(track.contains("Kōji &amp; The Waves"), "{track}");
    assert!(
        !track.contains("href=\"&#x2f;artist&#x2f;\"") && !track.contains("href=\"/artist/\""),
        "{track}"
    );
}

/// The recap page shows what fixtures/facts.py computed independently for October 2024.
#[tokio::test]
async fn the_recap_page_shows_the_months_answers() {
    let served = serve("dashboard_recap", None).await;
    let (status, _, page) = get(&served.base, &format!("/recap?period={PERIOD}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("October 2024"));
    // e.g. "… busiest 2024-10-22 (30); top listener of 35" for Ana.
    let ana = fact("recap.2024-10.ana.mx");
    let busiest = ana.split("busiest ").nth(1).unwrap();
    let (day, rest) = busiest.split_once(" (").unwrap();
    let plays = rest.split(')').next().unwrap();
    assert!(
        page.contains(&format!("{day} ({plays} plays)")),
        "Ana's busiest day {day}: {page}"
    );
    let streak = ana
        .split("streak ")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap();
    assert!(page.contains(&format!("{streak} days in a row")));
    let closest = fact("recap.2024-10.closest");
    let score = closest.split(": ").nth(1).unwrap();
    let rounded = format!("{:.1}", score.parse::<f64>().unwrap());
    assert!(
        page.contains(&format!("Ana &amp; Ben</a>: {rounded} out of 100")),
        "closest pair {closest}"
    );
    assert!(page.contains("Minutes listened, October 2024"));
}

#[tokio::test]
async fn a_group_password_guards_every_page() {
    let served = serve("dashboard_login", Some("correct horse battery")).await;
    let base = served.base.as_str();
    let http = client();
    // Signed out: every page sends you to the login form, and says where you were going.
    let (status, headers, _) = get(base, "/member/ana.mx?period=2024-10").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(
        headers[LOCATION],
        "/login?next=%2Fmember%2Fana.mx%3Fperiod%3D2024-10"
    );
    let (status, _, _) = get(base, "/static/style.css").await;
    assert_eq!(
        status,
        StatusCode::OK,
        "the login form's stylesheet is open"
    );

    let form = || login_form(&http, base);
    let post = |cookie: String, fields: Vec<(&'static str, String)>| {
        let http = http.clone();
        async move {
            http.post(format!("{base}/login"))
                .header("cookie", cookie)
                .form(&fields)
                .send()
                .await
                .unwrap()
        }
    };
    // No CSRF token (or another form's): refused before the password is looked at.
    let (nonce, token) = form().await;
    let (_, other_token) = form().await;
    let refused = post(
        nonce.clone(),
        vec![
            ("password", "correct horse battery".into()),
            ("csrf", other_token),
        ],
    )
    .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
    let refused = post(
        String::new(),
        vec![
            ("password", "correct horse battery".into()),
            ("csrf", token.clone()),
        ],
    )
    .await;
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);

    // A wrong password is refused. The two refusals above counted nowhere (a post without a valid
    // CSRF pair never reaches the throttle): five wrong passwords in a minute lock the address out for
    // the rest of it.
    for attempt in 1..=5 {
        let (nonce, token) = form().await;
        let wrong = post(
            nonce,
            vec![("password", format!("wrong {attempt}")), ("csrf", token)],
        )
        .await;
        assert_eq!(
            wrong.status(),
            StatusCode::UNAUTHORIZED,
            "attempt {attempt}"
        );
        assert!(
            wrong
                .headers()
                .get_all(SET_COOKIE)
                .iter()
                .all(|c| !c.to_str().unwrap().starts_with("earshot_session="))
        );
        assert!(wrong.text().await.unwrap().contains("not the group"));
    }
    let (nonce, token) = form().await;
    let limited = post(
        nonce,
        vec![
            ("password", "correct horse battery".into()),
            ("csrf", token),
        ],
    )
    .await;
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = limited.headers()[RETRY_AFTER]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&wait), "{wait}");
}

#[tokio::test]
async fn the_right_password_opens_a_session() {
    let served = serve("dashboard_session", Some("correct horse battery")).await;
    let base = served.base.as_str();
    let http = client();
    let (nonce, token) = login_form(&http, base).await;
    let signed_in = http
        .post(format!("{base}/login"))
        .header("cookie", nonce)
        .form(&[
            ("password", "correct horse battery"),
            ("csrf", &token),
            ("next", "//evil.example/"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        signed_in.headers()[LOCATION],
        "/",
        "only a path of this site is followed"
    );
    let session = signed_in
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|c| c.to_str().unwrap().to_string())
        .find(|c| c.starts_with("earshot_session="))
        .expect("a session cookie");
    assert!(
        session.contains("HttpOnly")
            && session.contains("SameSite=Strict")
            && session.contains("Max-Age=")
    );
    let cookie = session.split(';').next().unwrap().to_string();
    let page = http
        .get(format!("{base}/member/emi"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("Sign out"));
    // A forged or altered cookie is not a session (the id is random; the server knows its hash).
    let (name, value) = cookie.split_once('=').unwrap();
    let mut altered: Vec<char> = value.chars().collect();
    altered[0] = if altered[0] == 'A' { 'B' } else { 'A' };
    let forged = format!("{name}={}", altered.into_iter().collect::<String>());
    let page = http
        .get(format!("{base}/"))
        .header("cookie", forged)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::SEE_OTHER);
    // Signing out (the page's form, with its token) clears the cookie.
    let out = common::sign_out(base, &cookie).await;
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    assert!(
        out.headers()[SET_COOKIE]
            .to_str()
            .unwrap()
            .contains("Max-Age=0")
    );
}

#[test]
fn only_loopback_without_a_password() {
    let err = dashboard::check_bind("0.0.0.0:8080".parse().unwrap(), false).unwrap_err();
    assert!(
        err.to_string().contains("EARSHOT_DASHBOARD_PASSWORD_HASH"),
        "{err}"
    );
    dashboard::check_bind("0.0.0.0:8080".parse().unwrap(), true).unwrap();
    dashboard::check_bind("127.0.0.1:8080".parse().unwrap(), false).unwrap();
    dashboard::check_bind("[::1]:8080".parse().unwrap(), false).unwrap();
}

/// The binary refuses a public address without a password, naming the variable, before touching any store.
#[test]
fn the_binary_refuses_a_public_address_without_a_password() {
    let out = std::process::Command::new(earshot_tests::binary("dashboard"))
        .args(["--bind", "0.0.0.0:0"])
        .env_remove("EARSHOT_DASHBOARD_PASSWORD_HASH")
        .env("MONGODB_URI", "mongodb://127.0.0.1:1")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("refusing to listen on 0.0.0.0:0 without a group password"),
        "{stderr}"
    );

    let hashed = std::process::Command::new(earshot_tests::binary("dashboard"))
        .arg("hash-password")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write as _;
            child.stdin.take().unwrap().write_all(b"hunter2\n")?;
            child.wait_with_output()
        })
        .unwrap();
    assert!(hashed.status.success());
    let hash = String::from_utf8(hashed.stdout).unwrap();
    assert!(
        hash.starts_with("$argon2id$") && !hash.contains("hunter2"),
        "{hash}"
    );
}
