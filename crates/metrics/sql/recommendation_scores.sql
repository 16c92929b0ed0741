-- User-based collaborative filtering: for each member, tracks friends played that the member has not,
-- scored by the friends' plays weighted by taste match. The engine keeps the top N per member.
-- Similarity comes from views/similarity.sql.
WITH c AS (SELECT user_id, track_key, MAX(artist_song_name) AS name, MAX(track_name) AS track_name, COUNT(*) AS plays FROM plays GROUP BY user_id, track_key),
     mine AS (SELECT DISTINCT user_id AS owner, track_key AS owned FROM plays),
     candidates AS (
       SELECT s.me AS user_id, c.track_key AS track_key, MAX(c.name) AS name, MAX(c.track_name) AS track_name, SUM(s.similarity * c.plays) AS score
       FROM similarity AS s JOIN c ON s.friend = c.user_id
       GROUP BY s.me, c.track_key
     )
SELECT k.user_id AS user_id, k.track_key AS track_key, k.name AS name, k.track_name AS track_name, k.score AS score
FROM candidates AS k
LEFT JOIN mine AS o ON k.user_id = o.owner AND k.track_key = o.owned
WHERE o.owned IS NULL
ORDER BY user_id, score DESC, track_key
