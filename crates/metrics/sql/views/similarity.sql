-- Similarity of two members: the cosine of their artist play-count vectors (0 to 1), for every ordered
-- pair (me, friend) of different members who share an artist. The one definition that taste_match and
-- recommendation_scores read.
WITH norm AS (SELECT user_id AS member, SQRT(SUM(CAST(plays AS DOUBLE) * plays)) AS len FROM member_artist_plays GROUP BY user_id),
     dot AS (
       SELECT a.me AS me, b.friend AS friend, SUM(CAST(a.plays AS DOUBLE) * b.plays) AS dot
       FROM (SELECT user_id AS me, artist_id, plays FROM member_artist_plays) AS a
       JOIN (SELECT user_id AS friend, artist_id, plays FROM member_artist_plays) AS b ON a.artist_id = b.artist_id
       WHERE a.me <> b.friend
       GROUP BY a.me, b.friend
     )
SELECT d.me AS me, d.friend AS friend, d.dot / (nm.len * nf.len) AS similarity
FROM dot AS d
JOIN (SELECT member AS m1, len FROM norm) AS nm ON d.me = nm.m1
JOIN (SELECT member AS m2, len FROM norm) AS nf ON d.friend = nf.m2
