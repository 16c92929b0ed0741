//! The facts in fixtures/README.md hold for the committed fixture group, and the generator still
//! produces that group byte for byte.
//!
//! fixtures/facts.py computed the README's table with Python's standard library; this test recomputes
//! every fact a second, independent way (serde_json values, chrono-tz), so neither the table nor the
//! data can drift without a test failing.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use chrono_tz::America::Los_Angeles;
use earshot_testkit::fixtures::{
    GeneratorConfig, Listening, fixtures_dir, generate, raw_pages, write_raw_set,
};
use earshot_tests::files_under;
use serde_json::Value;

/// The `| `key` | `value` | meaning |` rows between the facts markers.
fn readme_facts() -> BTreeMap<String, String> {
    let readme = std::fs::read_to_string(fixtures_dir().join("README.md")).unwrap();
    let start = readme.find("<!-- facts:begin -->").expect("facts markers");
    let end = readme.find("<!-- facts:end -->").expect("facts markers");
    readme[start..end]
        .lines()
        .filter_map(|line| {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            let key = cells.get(1)?.strip_prefix('`')?.strip_suffix('`')?;
            let value = cells.get(2)?.strip_prefix('`')?.strip_suffix('`')?;
            Some((key.to_string(), value.replace("&#124;", "|")))
        })
        .collect()
}

fn track_key(track: &Value) -> String {
    track["id"]
        .as_str()
        .or_else(|| track["uri"].as_str())
        .unwrap()
        .to_string()
}

fn played_at(play: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(play["played_at"].as_str().unwrap())
        .unwrap()
        .with_timezone(&Utc)
}

/// `label (n)` of the most counted keys, ties joined by ` / ` in label order.
fn leaders(counts: &HashMap<String, usize>, label: impl Fn(&str) -> String) -> String {
    let best = counts.values().copied().max().unwrap();
    let mut winners: Vec<String> = counts
        .iter()
        .filter(|(_, n)| **n == best)
        .map(|(k, _)| label(k))
        .collect();
    winners.sort();
    format!("{} ({best})", winners.join(" / "))
}

fn computed_facts(listening: &Listening) -> BTreeMap<String, String> {
    let mut facts = BTreeMap::new();
    let mut put = |key: &str, value: String| {
        facts.insert(key.to_string(), value);
    };
    let all: Vec<&Value> = listening.members.iter().flat_map(|m| &m.plays).collect();
    let labels: HashMap<String, String> = all
        .iter()
        .map(|p| {
            (
                track_key(&p["track"]),
                format!(
                    "{} [{}]",
                    p["track"]["name"].as_str().unwrap(),
                    track_key(&p["track"])
                ),
            )
        })
        .collect();
    let label = |k: &str| labels[k].clone();

    put("members", listening.members.len().to_string());
    put("plays.total", all.len().to_string());
    for member in &listening.members {
        put(
            &format!("plays.{}", member.id()),
            member.plays.len().to_string(),
        );
    }
    put(
        "tracks.distinct",
        all.iter()
            .map(|p| track_key(&p["track"]))
            .collect::<BTreeSet<_>>()
            .len()
            .to_string(),
    );
    let artists: BTreeSet<&str> = all
        .iter()
        .flat_map(|p| p["track"]["artists"].as_array().unwrap())
        .filter_map(|a| a["id"].as_str())
        .collect();
    put("artists.distinct", artists.len().to_string());
    let with_id: BTreeSet<&str> = all
        .iter()
        .filter_map(|p| p["track"]["id"].as_str())
        .collect();
    put("tracks.with_id", with_id.len().to_string());
    let albums: BTreeSet<&str> = all
        .iter()
        .filter_map(|p| p["track"]["album"]["id"].as_str())
        .collect();
    put("albums.distinct", albums.len().to_string());
    let images: BTreeSet<&str> = all
        .iter()
        .filter(|p| p["track"]["album"]["id"].is_string())
        .flat_map(|p| p["track"]["album"]["images"].as_array().unwrap())
        .map(|i| i["url"].as_str().unwrap())
        .collect();
    put("images.distinct", images.len().to_string());
    let links = all
        .iter()
        .flat_map(|p| p["track"]["artists"].as_array().unwrap())
        .filter(|a| a["id"].is_string())
        .count();
    put("artist_links", links.to_string());
    put(
        "plays.first",
        all.iter()
            .map(|p| p["played_at"].as_str().unwrap())
            .min()
            .unwrap()
            .to_string(),
    );
    put(
        "plays.last",
        all.iter()
            .map(|p| p["played_at"].as_str().unwrap())
            .max()
            .unwrap()
            .to_string(),
    );

    let mut heavy: Option<(&str, usize, usize)> = None;
    for member in &listening.members {
        let mut per_hour: HashMap<String, usize> = HashMap::new();
        for play in &member.plays {
            *per_hour
                .entry(played_at(play).format("%Y-%m-%dT%H").to_string())
                .or_default() += 1;
        }
        let max = per_hour.values().copied().max().unwrap_or(0);
        let over_50 = per_hour.values().filter(|n| **n > 50).count();
        if heavy.is_none_or(|(_, best, _)| max > best) {
            heavy = Some((member.id(), max, over_50));
        }
    }
    let (heavy_id, heavy_max, heavy_over) = heavy.unwrap();
    put("heavy.member", heavy_id.to_string());
    put("heavy.max_plays_in_clock_hour", heavy_max.to_string());
    put("heavy.hours_over_50", heavy_over.to_string());

    let count = |f: &dyn Fn(&Value) -> bool| all.iter().filter(|p| f(p)).count().to_string();
    put("plays.null_context", count(&|p| p["context"].is_null()));
    put(
        "plays.local_file",
        count(&|p| p["track"]["is_local"] == Value::Bool(true)),
    );
    put(
        "plays.without_popularity",
        count(&|p| p["track"].get("popularity").is_none()),
    );
    put(
        "plays.multi_artist",
        count(&|p| p["track"]["artists"].as_array().unwrap().len() > 1),
    );
    put(
        "plays.hostile_name",
        count(&|p| p["track"]["name"] == "<script>alert(1)</script>"),
    );
    put(
        "plays.null_image_size",
        count(&|p| {
            p["track"]["album"]["images"]
                .as_array()
                .unwrap()
                .iter()
                .any(|i| i["height"].is_null())
        }),
    );

    let local_count = |date: &str, hour: Option<&str>, zone: Option<&str>| {
        all.iter()
            .filter(|p| {
                let local = played_at(p).with_timezone(&Los_Angeles);
                local.format("%Y-%m-%d").to_string() == date
                    && hour.is_none_or(|h| local.format("%H").to_string() == h)
                    && zone.is_none_or(|z| local.format("%Z").to_string() == z)
            })
            .count()
            .to_string()
    };
    put(
        "dst.fall_back_0100_pdt",
        local_count("2024-11-03", Some("01"), Some("PDT")),
    );
    put(
        "dst.fall_back_0100_pst",
        local_count("2024-11-03", Some("01"), Some("PST")),
    );
    put(
        "dst.spring_forward_day",
        local_count("2024-03-10", None, None),
    );
    put(
        "dst.spring_forward_pdt_0300",
        local_count("2024-03-10", Some("03"), Some("PDT")),
    );

    // The local week Monday 2024-10-28 00:00 PDT to Monday 2024-11-04 00:00 PST.
    let week_start =
        chrono::TimeZone::with_ymd_and_hms(&Los_Angeles, 2024, 10, 28, 0, 0, 0).unwrap();
    let week_end = chrono::TimeZone::with_ymd_and_hms(&Los_Angeles, 2024, 11, 4, 0, 0, 0).unwrap();
    for member in &listening.members {
        let n = member
            .plays
            .iter()
            .filter(|p| played_at(p) >= week_start && played_at(p) < week_end)
            .count();
        put(&format!("week_2024_10_28.{}", member.id()), n.to_string());
    }

    let mut group: HashMap<String, usize> = HashMap::new();
    for play in &all {
        *group.entry(track_key(&play["track"])).or_default() += 1;
    }
    put("top_track.group", leaders(&group, label));
    let mut listened: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();
    let mut by_track_member: HashMap<String, HashMap<String, usize>> = HashMap::new();
    for member in &listening.members {
        let mut counts: HashMap<String, usize> = HashMap::new();
        for play in &member.plays {
            let key = track_key(&play["track"]);
            *counts.entry(key.clone()).or_default() += 1;
            *by_track_member
                .entry(key.clone())
                .or_default()
                .entry(member.id().to_string())
                .or_default() += 1;
            listened.entry(member.id()).or_default().insert(key);
        }
        put(
            &format!("top_track.{}", member.id()),
            leaders(&counts, label),
        );
    }

    let ids: Vec<&str> = listened.keys().copied().collect();
    let mut shared: HashMap<String, usize> = HashMap::new();
    for (i, a) in ids.iter().enumerate() {
        for b in &ids[i + 1..] {
            shared.insert(
                format!("{a}+{b}"),
                listened[a].intersection(&listened[b]).count(),
            );
        }
    }
    put("shared.most_pair", leaders(&shared, |k| k.to_string()));
    let everyone = ids
        .iter()
        .skip(1)
        .fold(listened[ids[0]].clone(), |acc, id| &acc & &listened[id]);
    put("shared.by_everyone", everyone.len().to_string());

    let hit = by_track_member
        .iter()
        .max_by_key(|(key, members)| (members.values().sum::<usize>(), (*key).clone()))
        .map(|(key, _)| key.clone())
        .unwrap();
    let listeners = leaders(&by_track_member[&hit], |k| k.to_string());
    put(
        "most_played_track.top_listener",
        format!("{}: {listeners}", labels[&hit]),
    );
    for (kind, ranked) in [
        (
            "tracks",
            listening
                .members
                .iter()
                .map(|m| m.top_tracks.values().map(Vec::len).sum::<usize>())
                .sum::<usize>(),
        ),
        (
            "artists",
            listening
                .members
                .iter()
                .map(|m| m.top_artists.values().map(Vec::len).sum::<usize>())
                .sum::<usize>(),
        ),
    ] {
        put(&format!("top_{kind}.rows"), ranked.to_string());
    }
    let first = &listening.member("ana.mx").unwrap().top_tracks["long_term"][0];
    put(
        "top_tracks.ana.mx.long_term.1",
        format!(
            "{} [{}]",
            first["name"].as_str().unwrap(),
            first["id"].as_str().unwrap()
        ),
    );
    facts
}

/// fixtures/facts.py, run now, prints exactly the two tables fixtures/README.md holds: the README was
/// written by the script and nobody edited a fact by hand.
#[test]
fn facts_py_prints_the_readme_tables() {
    let script = fixtures_dir().join("facts.py");
    let output = std::process::Command::new("python3")
        .arg(&script)
        .output()
        .unwrap_or_else(|e| panic!("running python3 {}: {e}", script.display()));
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let printed = String::from_utf8(output.stdout).unwrap();
    let readme = std::fs::read_to_string(fixtures_dir().join("README.md")).unwrap();
    let block = |begin: &str, end: &str| {
        let start = readme.find(begin).expect("facts markers") + begin.len();
        readme[start..readme.find(end).expect("facts markers")]
            .trim()
            .to_string()
    };
    let expected = format!(
        "{}\n{}\n{}\n{}\n{}\n",
        block("<!-- facts:begin -->", "<!-- facts:end -->"),
        block(
            "<!-- analytics-facts:begin -->",
            "<!-- analytics-facts:end -->"
        ),
        block("<!-- history-facts:begin -->", "<!-- history-facts:end -->"),
        block("<!-- spoken-facts:begin -->", "<!-- spoken-facts:end -->"),
        block("<!-- listens-facts:begin -->", "<!-- listens-facts:end -->")
    );
    assert_eq!(
        printed, expected,
        "fixtures/README.md differs from what fixtures/facts.py computes: run `python3 fixtures/facts.py --write`"
    );
}

#[test]
fn the_fixture_readme_facts_hold() {
    let listening = Listening::fixture_group().unwrap();
    let documented = readme_facts();
    assert!(
        documented.len() >= 30,
        "the README should list the facts: {documented:?}"
    );
    let computed = computed_facts(&listening);
    for (key, value) in &documented {
        assert_eq!(
            computed.get(key),
            Some(value),
            "fact `{key}` in fixtures/README.md"
        );
    }
    let undocumented: Vec<&String> = computed
        .keys()
        .filter(|k| !documented.contains_key(*k))
        .collect();
    assert!(
        undocumented.is_empty(),
        "facts computed here but missing from the README: {undocumented:?}"
    );
    // The properties the fixture group exists to exercise.
    assert!(
        computed["heavy.max_plays_in_clock_hour"]
            .parse::<usize>()
            .unwrap()
            > 50
    );
    for key in [
        "plays.local_file",
        "plays.null_context",
        "plays.hostile_name",
        "plays.without_popularity",
    ] {
        assert!(computed[key].parse::<usize>().unwrap() > 0, "{key}");
    }
    for key in [
        "dst.fall_back_0100_pdt",
        "dst.fall_back_0100_pst",
        "dst.spring_forward_pdt_0300",
    ] {
        assert!(computed[key].parse::<usize>().unwrap() > 0, "{key}");
    }
}

#[test]
fn the_generator_reproduces_the_committed_fixtures_byte_for_byte() {
    let out = tempfile::tempdir().unwrap();
    generate(&GeneratorConfig::fixture_group())
        .write_fixture_to(out.path())
        .unwrap();
    let generated = files_under(out.path());
    let committed = files_under(&fixtures_dir());
    for (name, bytes) in &generated {
        if committed.get(name) != Some(bytes) {
            let old = committed
                .get(name)
                .map(|b| String::from_utf8_lossy(b).to_string())
                .unwrap_or_default();
            let new = String::from_utf8_lossy(bytes).to_string();
            let at = old
                .bytes()
                .zip(new.bytes())
                .position(|(a, b)| a != b)
                .unwrap_or(old.len().min(new.len()));
            let around = |s: &str| {
                s.get(at.saturating_sub(60)..(at + 60).min(s.len()))
                    .unwrap_or("")
                    .to_string()
            };
            panic!(
                "fixtures/{name} differs from the generator's output at byte {at}: regenerate it\ncommitted: …{}…\ngenerated: …{}…",
                around(&old),
                around(&new)
            );
        }
    }
    let extra: Vec<&String> = committed
        .keys()
        // Written by hand: the README, facts.py, and the two groups of the several-groups tests.
        .filter(|k| {
            !generated.contains_key(*k)
                && !["README.md", "facts.py"].contains(&k.as_str())
                && !k.starts_with("groups/")
        })
        .collect();
    assert!(
        extra.is_empty(),
        "committed fixture files the generator no longer makes: {extra:?}"
    );
}

#[test]
fn the_streaming_raw_writer_writes_what_the_in_memory_generator_makes() {
    // Benchmark sets are written one member at a time; they must be the same group.
    let config = GeneratorConfig::synthetic(7, 3, 30);
    let out = tempfile::tempdir().unwrap();
    let summary = write_raw_set(&config, out.path()).unwrap();
    let listening = generate(&config);
    let expected: BTreeMap<String, Value> = raw_pages(&listening).into_iter().collect();
    let written = files_under(&out.path().join("storage"));
    assert_eq!(
        written.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>()
    );
    for (key, bytes) in &written {
        let page: Value = serde_json::from_slice(bytes).unwrap();
        assert_eq!(&page, &expected[key], "{key}");
    }
    let plays: usize = listening.members.iter().map(|m| m.plays.len()).sum();
    assert_eq!(summary.plays, plays);
    assert_eq!(summary.members, 7);
    assert_eq!(summary.pages, written.len());
    assert_eq!(
        summary.bytes,
        written.values().map(|b| b.len() as u64).sum::<u64>()
    );
    assert_eq!(
        std::fs::read_to_string(out.path().join("group.toml")).unwrap(),
        listening.group_toml()
    );
}
