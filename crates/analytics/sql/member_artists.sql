-- Per member and artist: plays and minutes, through the (play, artist) links.
SELECT l.user_id AS user_id, l.artist_id AS artist_id, MAX(l.artist_name) AS name, COUNT(*) AS plays,
       CAST(SUM(p.duration_ms) AS DOUBLE) / 60000.0 AS minutes
FROM links AS l
JOIN plays AS p ON l.play_id = p.play_id
GROUP BY l.user_id, l.artist_id
ORDER BY user_id, plays DESC, artist_id
