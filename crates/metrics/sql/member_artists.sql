-- Per member and artist: plays and minutes, from the (play, artist) links (which carry the play's length).
SELECT user_id, artist_id, MAX(artist_name) AS name, COUNT(*) AS plays,
       CAST(SUM(duration_ms) AS DOUBLE) / 60000.0 AS minutes
FROM links
GROUP BY user_id, artist_id
ORDER BY user_id, plays DESC, artist_id
