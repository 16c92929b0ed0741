-- Similarity of two members: the cosine of their artist play-count vectors (0 to 1), for every ordered
-- pair (me, friend) of different members who share an artist. The one definition that taste_match,
-- recap_group's closest pair and recommendation_scores read. A member who hides from comparisons
-- (hidden_members) is on neither side: nobody is compared with them, and nothing is drawn from their plays.
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
LEFT JOIN (SELECT user_id AS hidden_me FROM hidden_members) AS hm ON d.me = hm.hidden_me
LEFT JOIN (SELECT user_id AS hidden_friend FROM hidden_members) AS hf ON d.friend = hf.hidden_friend
WHERE hm.hidden_me IS NULL AND hf.hidden_friend IS NULL
