-- User-based collaborative filtering: for each member, tracks friends played that the member has not,
-- scored by the friends' plays weighted by taste match. The engine keeps the top N per member.
WITH v AS (SELECT user_id, artist_id, COUNT(*) AS plays FROM links GROUP BY user_id, artist_id),
     norm AS (SELECT user_id AS member, SQRT(SUM(CAST(plays AS DOUBLE) * plays)) AS len FROM v GROUP BY user_id),
     dot AS (
       SELECT a.me AS me, b.friend AS friend, SUM(CAST(a.plays AS DOUBLE) * b.plays) AS dot
       FROM (SELECT user_id AS me, artist_id, plays FROM v) AS a
       JOIN (SELECT user_id AS friend, artist_id, plays FROM v) AS b ON a.artist_id = b.artist_id
       WHERE a.me <> b.friend
       GROUP BY a.me, b.friend
     ),
     sim AS (
       SELECT d.me AS me, d.friend AS friend, d.dot / (nm.len * nf.len) AS similarity
       FROM dot AS d
       JOIN (SELECT member AS m1, len FROM norm) AS nm ON d.me = nm.m1
       JOIN (SELECT member AS m2, len FROM norm) AS nf ON d.friend = nf.m2
     ),
     c AS (SELECT user_id, track_key, MAX(artist_song_name) AS name, MAX(track_name) AS track_name, COUNT(*) AS plays FROM plays GROUP BY user_id, track_key),
     mine AS (SELECT DISTINCT user_id AS owner, track_key AS owned FROM plays),
     candidates AS (
       SELECT s.me AS user_id, c.track_key AS track_key, MAX(c.name) AS name, MAX(c.track_name) AS track_name, SUM(s.similarity * c.plays) AS score
       FROM sim AS s JOIN c ON s.friend = c.user_id
       GROUP BY s.me, c.track_key
     )
SELECT k.user_id AS user_id, k.track_key AS track_key, k.name AS name, k.track_name AS track_name, k.score AS score
FROM candidates AS k
LEFT JOIN mine AS o ON k.user_id = o.owner AND k.track_key = o.owned
WHERE o.owned IS NULL
ORDER BY user_id, score DESC, track_key
