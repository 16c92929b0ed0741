-- Per member and album in the period: plays and milliseconds played (names: views/album_names.sql).
SELECT user_id, album_id, COUNT(*) AS plays, SUM(duration_ms) AS ms
FROM plays
WHERE album_id IS NOT NULL
GROUP BY user_id, album_id
