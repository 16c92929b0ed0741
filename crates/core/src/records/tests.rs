use super::*;

#[test]
fn a_listen_is_a_play_under_its_recording_key() {
    let listen = Listen {
        listened_at: Some(1_700_000_000),
        artist_name: "Nadia Reyes feat. Mira Sol".into(),
        track_name: "Quiet Harbour - Remastered 2011".into(),
        release_name: Some("Tidewater".into()),
        duration_ms: Some(201_000),
        isrc: None,
        recording_mbid: Some("6a3d0f6e-1c4b-4f3e-9a51-0b9c7d2e8f11".into()),
        spotify_track_id: None,
    };
    let la: Tz = "America/Los_Angeles".parse().unwrap();
    let play =
        RecentlyPlayedRecord::from_listen("fern", "Fern", &listen, PlaySource::Maloja, la).unwrap();
    let key = "mbid:6a3d0f6e-1c4b-4f3e-9a51-0b9c7d2e8f11";
    assert_eq!(play.track.recording_key.as_deref(), Some(key));
    assert_eq!(play.track.track_key.as_deref(), Some(key), "no Spotify id");
    assert_eq!(
        play.track.name_key.as_deref(),
        Some("name:nadia reyes — quiet harbour")
    );
    assert_eq!(play.track.artist_keys, ["nadia reyes"]);
    assert_eq!(play.source.as_str(), "maloja");
    assert_eq!(play.track.duration.as_deref(), Some("3:21"));
    assert!(
        play.id
            .starts_with("fern|2023-11-14T22:13:20.000Z|maloja|name:")
    );
    // With a Spotify id, the play goes by it (and links to it).
    let spotify = Listen {
        spotify_track_id: Some("4uLU6hMCjMI75M1A2tKUQC".into()),
        ..listen
    };
    let play =
        RecentlyPlayedRecord::from_listen("fern", "Fern", &spotify, PlaySource::Listenbrainz, la)
            .unwrap();
    assert_eq!(
        play.track.track_key.as_deref(),
        Some("4uLU6hMCjMI75M1A2tKUQC")
    );
    assert_eq!(
        play.track.track_url.as_deref(),
        Some("https://open.spotify.com/track/4uLU6hMCjMI75M1A2tKUQC")
    );
}

#[test]
fn durations_are_minutes_and_padded_seconds() {
    assert_eq!(format_duration(215_000), "3:35");
    assert_eq!(format_duration(59_999), "0:59");
    assert_eq!(format_duration(60_000), "1:00");
    assert_eq!(format_duration(3_600_000), "60:00");
    assert_eq!(format_duration(0), "0:00");
}

#[test]
fn clean_names_cut_at_the_first_bracket() {
    assert_eq!(clean_track_name("Song (feat. X)"), "Song");
    assert_eq!(
        clean_track_name("Song - Remastered [2011] (Live)"),
        "Song - Remastered"
    );
    assert_eq!(clean_track_name("Intro {Live}"), "Intro");
    assert_eq!(clean_track_name("  Plain  "), "Plain");
    assert_eq!(clean_track_name("(Untitled)"), "(Untitled)");
    assert_eq!(
        clean_track_name("<script>alert(1)</script>"),
        "<script>alert"
    );
    assert_eq!(clean_track_name("Café 🎧 (Remix)"), "Café 🎧");
}

#[test]
fn local_time_is_correct_across_both_dst_changes_of_2024() {
    let la: Tz = "America/Los_Angeles".parse().unwrap();
    let at = |s: &str| DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc);
    // Spring forward: 2024-03-10 02:00 PST becomes 03:00 PDT (10:00 UTC).
    assert_eq!(
        LocalTime::of(at("2024-03-10T09:59:59Z"), la).played_at_local,
        "2024-03-10 01:59:59 PST"
    );
    assert_eq!(
        LocalTime::of(at("2024-03-10T10:00:00Z"), la).played_at_local,
        "2024-03-10 03:00:00 PDT"
    );
    // Fall back: 2024-11-03 02:00 PDT becomes 01:00 PST (09:00 UTC); 01:30 happens twice.
    assert_eq!(
        LocalTime::of(at("2024-11-03T08:30:00Z"), la).played_at_local,
        "2024-11-03 01:30:00 PDT"
    );
    assert_eq!(
        LocalTime::of(at("2024-11-03T09:30:00Z"), la).played_at_local,
        "2024-11-03 01:30:00 PST"
    );
    // The day, hour and ISO weekday are the local ones: 23:30 on Saturday 2 March in Los Angeles is
    // Sunday 3 March in UTC.
    let late = LocalTime::of(at("2024-03-03T07:30:00Z"), la);
    assert_eq!(
        (late.local_day.as_str(), late.local_hour, late.local_weekday),
        ("2024-03-02", 23, 6)
    );
    // Day numbers count from 1970-01-01 in the local calendar: consecutive days differ by one.
    assert_eq!(
        LocalTime::of(at("1970-01-01T12:00:00Z"), la).local_day_number,
        0
    );
    assert_eq!(
        LocalTime::of(at("2024-03-03T07:30:00Z"), la).local_day_number + 1,
        LocalTime::of(at("2024-03-04T07:30:00Z"), la).local_day_number
    );
    let spring = LocalTime::of(at("2024-03-10T10:00:00Z"), la);
    assert_eq!(
        (
            spring.local_day.as_str(),
            spring.local_hour,
            spring.local_weekday
        ),
        ("2024-03-10", 3, 7)
    );
}
