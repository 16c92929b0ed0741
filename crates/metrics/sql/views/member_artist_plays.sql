-- Per member and artist in the period: plays, milliseconds played (the links carry the play's length)
-- and the first play. The artist metrics and views/similarity.sql read this, not the links.
SELECT user_id, artist_id, COUNT(*) AS plays, SUM(duration_ms) AS ms, MIN(played_at) AS first_here
FROM links
GROUP BY user_id, artist_id
