-- Taste match: the members' similarity (views/similarity.sql: cosine of artist play counts), 0 to 100.
SELECT me AS member_a, friend AS member_b, 100.0 * similarity AS taste_match
FROM similarity
WHERE me < friend
ORDER BY taste_match DESC, member_a, member_b
