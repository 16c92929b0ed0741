use super::*;

#[test]
fn csv_fields_keep_quoted_commas_and_quotes() {
    assert_eq!(
        csv_fields(r#"1612116900,"Sigur Rós","Ágætis byrjun, Live","Say ""Hi"""#),
        [
            "1612116900",
            "Sigur Rós",
            "Ágætis byrjun, Live",
            "Say \"Hi\""
        ]
    );
    assert_eq!(csv_fields("a;b;c"), ["a", "b", "c"]);
}

#[test]
fn times_read_as_the_exporters_write_them() {
    let at = 1_612_116_900; // 2021-01-31T18:15:00Z
    assert_eq!(parse_time("31 Jan 2021 18:15"), Some(at));
    assert_eq!(parse_time("31 Jan 2021, 18:15"), Some(at));
    assert_eq!(parse_time("2021-01-31 18:15:00"), Some(at));
    assert_eq!(parse_time("2021-01-31T19:15:00+01:00"), Some(at));
    assert_eq!(parse_time("yesterday"), None);
}

#[test]
fn a_maloja_scrobble_reads_its_first_artist_title_album_and_length() {
    let scrobble = json!({"time": 1_700_000_000, "track": {"artists": ["A", "B"], "title": "Song",
        "album": {"albumtitle": "LP", "artists": ["A"]}, "length": 200}, "duration": 190, "origin": "client:x"});
    let listen = maloja_listen(&scrobble);
    assert_eq!(listen["track_metadata"]["artist_name"], "A, B");
    assert_eq!(listen["track_metadata"]["release_name"], "LP");
    assert_eq!(
        listen["track_metadata"]["additional_info"]["duration_ms"],
        200_000
    );
    assert_eq!(listen["listened_at"], 1_700_000_000);
}
