-- When each member first played each artist, over their whole history (`links_all`: every period). An
-- artist credited by name only goes by the id views/artist_keys.sql gives its key, as in
-- views/member_artist_plays.sql.
WITH g AS (
       SELECT user_id, artist_id, artist_key, MIN(played_at) AS first_ever
       FROM links_all
       WHERE artist_id IS NOT NULL OR artist_key IS NOT NULL
       GROUP BY user_id, artist_id, artist_key
     ),
     r AS (
       SELECT g.user_id AS user_id,
              CASE WHEN g.artist_id IS NOT NULL THEN g.artist_id
                   WHEN k.k_id IS NOT NULL THEN k.k_id
                   ELSE CONCAT('name:', g.artist_key) END AS artist_id,
              g.first_ever AS first_ever
       FROM g
       LEFT JOIN (SELECT artist_key AS k_key, artist_id AS k_id FROM artist_keys) AS k ON g.artist_key = k.k_key
     )
SELECT user_id, artist_id, MIN(first_ever) AS first_ever
FROM r
GROUP BY user_id, artist_id
