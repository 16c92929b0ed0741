//! Hostile names as literal text, and the reconnect reminders.

use super::*;

/// A group whose name and friends' names are hostile in every chat's markup gets them as literal text
/// in every field each destination reads as markup (issue 37: Slack's `text` was not escaped).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_names_reach_every_destination_as_literal_text() {
    let (setup, receiver) = week_and_receiver("recap_hostile", false).await;
    // Every friend's display name, and the group's, is a mention, markup and a forged link.
    let hostile =
        |what: &str| format!("<!channel> @everyone **{what}** [x](https://evil.example) <b>&");
    let mut text = std::fs::read_to_string(&setup.config).unwrap().replace(
        "name = \"fixture-group\"",
        &format!("name = \"{}\"", hostile("crew")),
    );
    for name in ["Ana", "Ben", "Chloé", "Dev", "Emi 🎧"] {
        text = text.replace(
            &format!("display_name = \"{name}\""),
            &format!("display_name = \"{}\"", hostile(name)),
        );
    }
    std::fs::write(&setup.config, text).unwrap();
    let out = recap(&setup, &["--period", WEEK]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path_of = |i: usize| {
        url::Url::parse(&setup.secrets[i])
            .unwrap()
            .path()
            .to_string()
    };
    // Slack: every mrkdwn field, the fallback `text` included, holds `<` only in the dashboard link.
    let slack = receiver.accepted(&path_of(1));
    assert_eq!(slack.len(), 1);
    let slack = &slack[0];
    let mut mrkdwn = vec![slack["text"].as_str().unwrap().to_string()];
    mrkdwn.push(
        slack["blocks"][1]["text"]["text"]
            .as_str()
            .unwrap()
            .to_string(),
    );
    mrkdwn.push(
        slack["blocks"][2]["elements"][0]["text"]
            .as_str()
            .unwrap()
            .to_string(),
    );
    for field in &mrkdwn {
        let link = format!("<{DASHBOARD}/recap?period={WEEK}|The whole recap>");
        let rest = field.replace(&link, "");
        assert!(!rest.contains('<') && !rest.contains('>'), "Slack: {field}");
    }
    assert!(mrkdwn[0].contains("&lt;!channel&gt;"), "{}", mrkdwn[0]);
    assert!(mrkdwn[1].contains("&lt;!channel&gt;"), "{}", mrkdwn[1]);
    // Discord: no mention is parsed, and the markdown of the names is escaped.
    let discord = receiver.accepted(&path_of(0));
    assert_eq!(discord.len(), 1);
    assert_eq!(
        discord[0]["allowed_mentions"]["parse"],
        serde_json::json!([])
    );
    let description = discord[0]["embeds"][0]["description"].as_str().unwrap();
    assert!(description.contains("\\[x\\]\\(https"), "{description}");
    assert!(!description.contains("[x](https"), "{description}");
    // ntfy: its markdown message escapes them too.
    let ntfy = receiver.accepted("/ntfy/");
    assert_eq!(ntfy.len(), 1);
    let message = ntfy[0]["message"].as_str().unwrap();
    assert!(
        !message.contains("<b>") && !message.contains("[x](https"),
        "{message}"
    );
}

/// Reconnect reminders: with the clock 7 days before Ana's authorisation ends, `recap --reminders`
/// posts one message per destination naming her, the day and the dashboard's `/connect`; a second run
/// posts nothing; once it has ended, one more per destination; a friend whose authorisation is far
/// from its end gets none; and no byte printed holds a destination's URL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnect_reminders_go_once_a_week_before_and_once_at_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let storage = earshot_core::Storage::local(dir.path());
    let db = earshot_tests::fresh_database("recap_reminders").await;
    let authorised = chrono::DateTime::parse_from_rfc3339("2026-06-10T12:00:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    let state =
        |member: &str, at: chrono::DateTime<chrono::Utc>| earshot_state::fetch_state::MemberState {
            member: member.into(),
            display_name: member.into(),
            client_id: "app".into(),
            authorised_at: at,
            needs_reauth: None,
            cursor_after_ms: None,
            last_play_at: None,
            last_fetch_at: None,
            gaps: Vec::new(),
        };
    let ana = state("ana.mx", authorised);
    earshot_state::fetch_state::save(&storage, &ana)
        .await
        .unwrap();
    earshot_state::fetch_state::save(
        &storage,
        &state("ben_k", authorised + chrono::Duration::days(60)),
    )
    .await
    .unwrap();
    let (setup, receiver) = posting_to_a_receiver(db, dir).await;
    let at = |t: chrono::DateTime<chrono::Utc>| {
        recap_with(&setup, &["--reminders"], &[("EARSHOT_NOW", t.to_rfc3339())])
    };
    let ends = ana.authorisation_ends();
    let early = at(ends - chrono::Duration::days(8));
    assert!(early.status.success(), "{early:?}");
    assert_eq!(receiver.total(), 0, "nothing is due 8 days before");

    let week_before = ends - chrono::Duration::days(7) + chrono::Duration::hours(1);
    let first = at(week_before);
    assert!(first.status.success(), "{first:?}");
    assert_eq!(receiver.total(), 4, "one message per destination");
    let path_of = |i: usize| {
        url::Url::parse(&setup.secrets[i])
            .unwrap()
            .path()
            .to_string()
    };
    let connect = format!("{DASHBOARD}/connect");
    let discord = &receiver.accepted(&path_of(0))[0];
    let content = discord["content"].as_str().unwrap();
    assert!(
        content.contains("Ana") && content.contains("2026\\-12\\-10") && content.contains(&connect),
        "{content}"
    );
    assert_eq!(discord["allowed_mentions"]["parse"], serde_json::json!([]));
    let slack = receiver.accepted(&path_of(1))[0]["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        slack.contains("Ana") && slack.contains("2026-12-10") && slack.contains(&connect),
        "{slack}"
    );
    let ntfy = &receiver.accepted("/ntfy/")[0];
    assert_eq!(ntfy["click"], connect.as_str());
    assert_eq!(
        ntfy["topic"].as_str().unwrap(),
        url::Url::parse(&setup.secrets[2])
            .unwrap()
            .path()
            .trim_start_matches("/ntfy/")
    );
    let hook = &receiver.accepted(&path_of(3))[0];
    assert_eq!(hook["kind"], "reconnect_reminder");
    assert_eq!(hook["member"], "ana.mx");
    assert_eq!(hook["due"], "ends_soon");
    assert_eq!(hook["ends_on"], "2026-12-10");
    assert!(
        !hook.to_string().contains("ben"),
        "Ben's authorisation is far from its end"
    );

    let again = at(week_before + chrono::Duration::days(1));
    assert!(again.status.success(), "{again:?}");
    assert_eq!(receiver.total(), 4, "a second run posts nothing");

    let ended = at(ends + chrono::Duration::hours(2));
    assert!(ended.status.success(), "{ended:?}");
    assert_eq!(
        receiver.total(),
        8,
        "once more per destination when it has ended"
    );
    assert_eq!(receiver.accepted(&path_of(3))[1]["due"], "ended");
    let later = at(ends + chrono::Duration::days(2));
    assert!(later.status.success());
    assert_eq!(receiver.total(), 8, "and only once");
    assert_no_secret(&setup, &[&early, &first, &again, &ended, &later]);
}
