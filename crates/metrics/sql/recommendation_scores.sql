-- User-based collaborative filtering: for each member, tracks friends played that the member has not,
-- scored by the friends' plays weighted by taste match. The engine keeps the top N per member.
-- Similarity comes from views/similarity.sql.
WITH candidates AS (
       SELECT s.me AS user_id, c.track_key AS track_key, SUM(s.similarity * c.plays) AS score
       FROM similarity AS s JOIN member_track_plays AS c ON s.friend = c.user_id
       GROUP BY s.me, c.track_key
     )
SELECT k.user_id AS user_id, k.track_key AS track_key, n.name AS name, n.track_name AS track_name, k.score AS score
FROM candidates AS k
LEFT JOIN (SELECT user_id AS owner, track_key AS owned FROM member_track_plays) AS o
  ON k.user_id = o.owner AND k.track_key = o.owned
LEFT JOIN (SELECT track_key AS n_key, name, track_name FROM track_names) AS n ON k.track_key = n.n_key
WHERE o.owned IS NULL
ORDER BY user_id, score DESC, track_key
