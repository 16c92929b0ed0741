-- Per member and track in the period: plays and milliseconds played. Every track metric reads this, not
-- the plays: the one grouping of the plays by member and track (names come from views/track_names.sql).
SELECT user_id, track_key, COUNT(*) AS plays, SUM(duration_ms) AS ms
FROM plays
GROUP BY user_id, track_key
