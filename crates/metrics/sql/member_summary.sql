-- Per member: plays, minutes listened, distinct tracks and artists.
WITH artists AS (
  SELECT user_id, COUNT(DISTINCT artist_id) AS unique_artists FROM links GROUP BY user_id
)
SELECT p.user_id AS user_id,
       COUNT(*) AS plays,
       CAST(SUM(p.duration_ms) AS DOUBLE) / 60000.0 AS minutes,
       COUNT(DISTINCT p.track_key) AS unique_tracks,
       MAX(a.unique_artists) AS unique_artists
FROM plays AS p
LEFT JOIN artists AS a ON p.user_id = a.user_id
GROUP BY p.user_id
ORDER BY user_id
