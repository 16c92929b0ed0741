-- When each member first played each artist, over their whole history (`links_all`: every period).
SELECT user_id, artist_id, MIN(played_at) AS first_ever
FROM links_all
WHERE artist_id IS NOT NULL
GROUP BY user_id, artist_id
