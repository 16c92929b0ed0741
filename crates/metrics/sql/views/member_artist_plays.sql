-- Per member and artist in the period: plays, milliseconds played (the links carry the play's length)
-- and the first play. The artist metrics and views/similarity.sql read this, not the links.
--
-- An artist a play from beyond Spotify credits by name only (`artist_id` null, `artist_key` the name
-- normalised as earshot-core's `recording::normalise_artist` does) counts as the Spotify artist a link
-- of the same key names, over the whole history (the least id when several do; views/artist_keys.sql),
-- else as `name:<key>`.
WITH g AS (
       SELECT user_id, artist_id, artist_key, COUNT(*) AS plays, SUM(duration_ms) AS ms,
              MIN(played_at) AS first_here
       FROM links
       GROUP BY user_id, artist_id, artist_key
     ),
     r AS (
       SELECT g.user_id AS user_id,
              CASE WHEN g.artist_id IS NOT NULL THEN g.artist_id
                   WHEN k.k_id IS NOT NULL THEN k.k_id
                   ELSE CONCAT('name:', g.artist_key) END AS artist_id,
              g.plays AS plays, g.ms AS ms, g.first_here AS first_here
       FROM g
       LEFT JOIN (SELECT artist_key AS k_key, artist_id AS k_id FROM artist_keys) AS k ON g.artist_key = k.k_key
     )
SELECT user_id, artist_id, SUM(plays) AS plays, SUM(ms) AS ms, MIN(first_here) AS first_here
FROM r
GROUP BY user_id, artist_id
