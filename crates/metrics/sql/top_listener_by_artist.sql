-- Who listened to each artist the most (ties listed).
WITH m AS (SELECT artist_id AS best_id, MAX(plays) AS best FROM member_artist_plays GROUP BY artist_id)
SELECT c.artist_id AS artist_id, c.user_id AS user_id, c.plays AS plays
FROM member_artist_plays AS c JOIN m ON c.artist_id = m.best_id AND c.plays = m.best
ORDER BY artist_id, user_id
