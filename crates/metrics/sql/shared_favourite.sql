-- For each pair: the shared track they played most together (most plays by both, then track key).
SELECT a.member_a AS member_a, b.member_b AS member_b, a.track_key AS track_key,
       a.plays AS plays_a, b.plays AS plays_b, a.plays + b.plays AS plays
FROM (SELECT user_id AS member_a, track_key, plays FROM member_track_plays) AS a
JOIN (SELECT user_id AS member_b, track_key, plays FROM member_track_plays) AS b ON a.track_key = b.track_key
WHERE a.member_a < b.member_b
ORDER BY member_a, member_b, plays DESC, track_key
