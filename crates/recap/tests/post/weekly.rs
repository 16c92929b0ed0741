//! The weekly recap: posted once per destination, whatever fails, and no URL leaks.

use super::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_weekly_recap_is_posted_once_per_destination_whatever_fails_and_leaks_no_url() {
    // With the streaming histories imported: the week has podcasts too.
    let (setup, receiver) = week_and_receiver("recap_post", true).await;
    let db = setup.db.clone();
    let path_of = |i: usize| {
        url::Url::parse(&setup.secrets[i])
            .unwrap()
            .path()
            .to_string()
    };
    let (discord, slack, hook) = (path_of(0), path_of(1), path_of(3));
    let ntfy = "/ntfy/".to_string();

    // What the stored week says, read here from the rows themselves.
    let run = db
        .collection::<Document>("analytics_runs")
        .find_one(doc! {"period": WEEK})
        .await
        .unwrap()
        .expect("the week's run");
    let run = run.get_str("_id").unwrap().to_string();
    let mut members = Vec::new();
    let mut cursor = db
        .collection::<Document>("analytics_recap_members")
        .find(doc! {"run": &run, "plays": {"$gt": 0}})
        .await
        .unwrap();
    while cursor.advance().await.unwrap() {
        let d = cursor.deserialize_current().unwrap();
        members.push((
            d.get_str("user_id").unwrap().to_string(),
            d.get_f64("minutes").unwrap(),
        ));
    }
    assert!(
        members.len() >= 2,
        "the fixture week has plays: {members:?}"
    );
    members.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let most = members[0].0.clone();
    let names: BTreeMap<String, String> = earshot_tests::fixture_group_config()
        .members
        .iter()
        .map(|m| (m.id.clone(), m.display_name.clone()))
        .collect();
    // The podcast of the week: the show with the most minutes across the group, from the stored rows.
    let mut shows: BTreeMap<String, (f64, BTreeSet<String>)> = BTreeMap::new();
    let mut cursor = db
        .collection::<Document>("analytics_show_minutes")
        .find(doc! {"run": &run, "kind": "episode"})
        .await
        .unwrap();
    while cursor.advance().await.unwrap() {
        let d = cursor.deserialize_current().unwrap();
        let show = shows
            .entry(d.get_str("show_name").unwrap().to_string())
            .or_default();
        show.0 += d.get_f64("minutes").unwrap();
        show.1.insert(d.get_str("user_id").unwrap().to_string());
    }
    let (podcast, (podcast_minutes, podcast_friends)) = shows
        .iter()
        .max_by(|a, b| a.1.0.total_cmp(&b.1.0).then(b.0.cmp(a.0)))
        .expect("the fixture week has podcasts");
    let group_row = db
        .collection::<Document>("analytics_recap_group")
        .find_one(doc! {"run": &run})
        .await
        .unwrap()
        .expect("the group's recap row");
    let song = group_row
        .get_str("most_shared_track_name")
        .unwrap()
        .to_string();

    // A dry run prints the message and posts nothing.
    let dry = recap(&setup, &["--period", WEEK, "--dry-run"]);
    assert!(
        dry.status.success(),
        "{}",
        String::from_utf8_lossy(&dry.stderr)
    );
    let printed = String::from_utf8_lossy(&dry.stdout);
    assert!(
        printed.starts_with(
            "fixture-group · week 44 of 2024\n28 Oct – 3 Nov 2024 (America/Los_Angeles)\n"
        ),
        "{printed}"
    );
    assert!(
        printed.contains(&format!("Listened most: {},", names[&most])),
        "{printed}"
    );
    assert!(
        printed.contains(&format!("Song of the week: {song} (")),
        "{printed}"
    );
    assert!(
        printed.contains(&format!("Podcast of the week: {podcast} (")),
        "{printed}"
    );
    assert!(
        printed.contains(&format!("The whole recap: {DASHBOARD}/recap?period={WEEK}")),
        "{printed}"
    );
    assert_eq!(printed.matches(": would post\n").count(), 4, "{printed}");
    assert_eq!(receiver.total(), 0, "a dry run posts nothing");

    // The first run: Discord rate-limits once (Retry-After: 1), the webhook answers 500 throughout.
    receiver.script(&discord, &[Reply::RateLimited(1)]);
    receiver.script(&hook, &[Reply::Status(500); 8]);
    let first = recap(
        &setup,
        &["--period", WEEK, "--retry-budget", "2", "--max-wait", "5"],
    );
    assert_eq!(
        first.status.code(),
        Some(3),
        "partial: {}",
        String::from_utf8_lossy(&first.stderr)
    );
    let tries = receiver.received(&discord);
    assert_eq!(tries.len(), 2, "rate limited once, then posted");
    assert!(
        tries[1] - tries[0] >= Duration::from_millis(950),
        "waited as Retry-After asked"
    );
    for path in [&discord, &slack, &ntfy] {
        assert_eq!(receiver.accepted(path).len(), 1, "{path} posted once");
    }
    assert!(
        receiver.received(&hook).len() >= 2,
        "a 500 is retried within the budget"
    );
    assert!(receiver.accepted(&hook).is_empty());
    let stderr = String::from_utf8_lossy(&first.stderr);
    assert!(
        stderr.contains("destination `hook`") && stderr.contains("HTTP 500"),
        "{stderr}"
    );

    // The next run posts the webhook only, once; the one after that posts nothing.
    receiver.script(&hook, &[]);
    let before = receiver.total();
    let second = recap(&setup, &["--period", WEEK]);
    assert!(
        second.status.success(),
        "{}",
        String::from_utf8_lossy(&second.stderr)
    );
    assert_eq!(
        receiver.total(),
        before + 1,
        "only the webhook is posted again"
    );
    assert_eq!(receiver.accepted(&hook).len(), 1);
    let third = recap(&setup, &["--period", WEEK]);
    assert!(third.status.success());
    assert_eq!(receiver.total(), before + 1, "a re-run posts nothing");
    let ledger = db
        .collection::<Document>("recap_posts")
        .count_documents(doc! {"period": WEEK})
        .await
        .unwrap();
    assert_eq!(ledger, 4);
    let again = recap(&setup, &["--period", WEEK, "--dry-run"]);
    assert_eq!(
        String::from_utf8_lossy(&again.stdout)
            .matches("would post nothing")
            .count(),
        4
    );

    // Discord: one embed, mentions off.
    let body = &receiver.accepted(&discord)[0];
    assert_eq!(keys(body), set(&["username", "allowed_mentions", "embeds"]));
    assert_eq!(body["allowed_mentions"], serde_json::json!({"parse": []}));
    let embed = &body["embeds"][0];
    assert_eq!(body["embeds"].as_array().unwrap().len(), 1);
    assert_eq!(
        keys(embed),
        set(&["title", "description", "color", "footer", "fields", "url"])
    );
    assert_eq!(embed["title"], "fixture-group · week 44 of 2024");
    assert_eq!(embed["url"], format!("{DASHBOARD}/recap?period={WEEK}"));
    let description = embed["description"].as_str().unwrap();
    assert!(
        description.contains(&format!("**Listened most:** {},", names[&most])),
        "{description}"
    );
    assert_eq!(embed["fields"][0]["name"], "Discoveries");
    assert!(embed["fields"][0]["value"].as_str().unwrap().len() <= 1024);

    // Slack: header, section, context.
    let body = &receiver.accepted(&slack)[0];
    assert_eq!(keys(body), set(&["text", "blocks"]));
    let types: Vec<&str> = body["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["header", "section", "context"]);
    assert_eq!(body["blocks"][0]["text"]["type"], "plain_text");
    assert_eq!(
        body["blocks"][0]["text"]["text"],
        "fixture-group · week 44 of 2024"
    );
    assert_eq!(body["blocks"][1]["text"]["type"], "mrkdwn");
    assert!(
        body["blocks"][1]["text"]["text"]
            .as_str()
            .unwrap()
            .starts_with("*Listened most:* ")
    );
    let context = body["blocks"][2]["elements"][0]["text"].as_str().unwrap();
    assert!(
        context.ends_with(&format!(
            "<{DASHBOARD}/recap?period={WEEK}|The whole recap>"
        )),
        "{context}"
    );
    assert!(body["text"].as_str().unwrap().contains("Listened most: "));

    // ntfy: published as JSON to the root, naming the topic.
    let body = &receiver.accepted(&ntfy)[0];
    assert_eq!(
        keys(body),
        set(&["topic", "title", "message", "markdown", "tags", "click"])
    );
    let topic = setup.secrets[2].rsplit('/').next().unwrap();
    assert_eq!(body["topic"], topic);
    assert_eq!(body["markdown"], true);
    assert_eq!(body["tags"], serde_json::json!(["headphones"]));
    assert_eq!(body["click"], format!("{DASHBOARD}/recap?period={WEEK}"));

    // The webhook: the recap's own JSON, equal to the stored rows.
    let body = &receiver.accepted(&hook)[0];
    assert_eq!(
        keys(body),
        set(&[
            "schema",
            "group",
            "period",
            "first_day",
            "last_day",
            "time_zone",
            "listened_most",
            "song_of_the_week",
            "closest_taste",
            "podcast_of_the_week",
            "members",
            "dashboard_url",
            "text",
        ])
    );
    assert_eq!(body["schema"], "earshot.weekly-recap.v1");
    assert_eq!(body["period"], WEEK);
    assert_eq!(
        (body["first_day"].as_str(), body["last_day"].as_str()),
        (Some("2024-10-28"), Some("2024-11-03"))
    );
    assert_eq!(body["listened_most"]["member"], most.as_str());
    assert_eq!(body["podcast_of_the_week"]["show_name"], podcast.as_str());
    assert_eq!(
        body["podcast_of_the_week"]["listeners"],
        podcast_friends.len()
    );
    assert_eq!(
        body["podcast_of_the_week"]["minutes"],
        podcast_minutes.round() as i64
    );
    assert_eq!(
        body["song_of_the_week"]["track_key"],
        group_row.get_str("most_shared_track_key").unwrap()
    );
    let listed: Vec<&str> = body["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["member"].as_str().unwrap())
        .collect();
    let stored: Vec<&str> = members.iter().map(|(id, _)| id.as_str()).collect();
    assert_eq!(
        listed, stored,
        "every member who played, most minutes first"
    );
    for member in body["members"].as_array().unwrap() {
        assert_eq!(
            keys(member),
            set(&[
                "member",
                "name",
                "minutes",
                "plays",
                "top_track",
                "discovery"
            ])
        );
    }

    assert_no_secret(&setup, &[&dry, &first, &second, &third, &again]);
}
