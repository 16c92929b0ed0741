-- Per member and album: plays and minutes.
SELECT user_id, album_id, MAX(album_name) AS name, COUNT(*) AS plays, CAST(SUM(duration_ms) AS DOUBLE) / 60000.0 AS minutes
FROM plays
WHERE album_id IS NOT NULL
GROUP BY user_id, album_id
ORDER BY user_id, plays DESC, album_id
