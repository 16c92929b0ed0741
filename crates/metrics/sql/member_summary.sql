-- Per member: plays, minutes listened, distinct tracks and artists.
WITH tracks AS (
  SELECT user_id, SUM(plays) AS plays, SUM(ms) AS ms, COUNT(track_key) AS unique_tracks
  FROM member_track_plays GROUP BY user_id
),
artists AS (
  SELECT user_id AS a_user, COUNT(*) AS unique_artists FROM member_artist_plays GROUP BY user_id
)
SELECT t.user_id AS user_id,
       t.plays AS plays,
       CAST(t.ms AS DOUBLE) / 60000.0 AS minutes,
       t.unique_tracks AS unique_tracks,
       a.unique_artists AS unique_artists
FROM tracks AS t
LEFT JOIN artists AS a ON t.user_id = a.a_user
ORDER BY user_id
