-- Per member and track: plays and minutes (tops by plays and by minutes are read from this).
SELECT user_id, track_key, MAX(artist_song_name) AS name, COUNT(*) AS plays, CAST(SUM(duration_ms) AS DOUBLE) / 60000.0 AS minutes
FROM plays
GROUP BY user_id, track_key
ORDER BY user_id, plays DESC, track_key
