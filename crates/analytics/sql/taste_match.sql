-- Taste match: cosine similarity of the members' artist play-count vectors, 0 to 100.
WITH v AS (SELECT user_id, artist_id, COUNT(*) AS plays FROM links GROUP BY user_id, artist_id),
     norm AS (SELECT user_id AS member, SQRT(SUM(CAST(plays AS DOUBLE) * plays)) AS len FROM v GROUP BY user_id),
     dot AS (
       SELECT a.member_a AS member_a, b.member_b AS member_b, SUM(CAST(a.plays AS DOUBLE) * b.plays) AS dot
       FROM (SELECT user_id AS member_a, artist_id, plays FROM v) AS a
       JOIN (SELECT user_id AS member_b, artist_id, plays FROM v) AS b ON a.artist_id = b.artist_id
       WHERE a.member_a < b.member_b
       GROUP BY a.member_a, b.member_b
     )
SELECT d.member_a AS member_a, d.member_b AS member_b, 100.0 * d.dot / (na.len * nb.len) AS taste_match
FROM dot AS d
JOIN (SELECT member AS ma, len FROM norm) AS na ON d.member_a = na.ma
JOIN (SELECT member AS mb, len FROM norm) AS nb ON d.member_b = nb.mb
ORDER BY taste_match DESC, member_a, member_b
