-- For each pair of members: distinct tracks both played, and the Jaccard index of their track sets.
WITH n AS (SELECT user_id AS member, COUNT(*) AS tracks FROM member_track_plays GROUP BY user_id),
     pairs AS (
       SELECT a.member_a AS member_a, b.member_b AS member_b, COUNT(*) AS shared
       FROM (SELECT user_id AS member_a, track_key FROM member_track_plays) AS a
       JOIN (SELECT user_id AS member_b, track_key FROM member_track_plays) AS b ON a.track_key = b.track_key
       WHERE a.member_a < b.member_b
       GROUP BY a.member_a, b.member_b
     )
SELECT p.member_a AS member_a, p.member_b AS member_b, p.shared AS shared,
       CAST(p.shared AS DOUBLE) / (na.tracks + nb.tracks - p.shared) AS jaccard
FROM pairs AS p
JOIN (SELECT member AS ma, tracks FROM n) AS na ON p.member_a = na.ma
JOIN (SELECT member AS mb, tracks FROM n) AS nb ON p.member_b = nb.mb
ORDER BY shared DESC, member_a, member_b
