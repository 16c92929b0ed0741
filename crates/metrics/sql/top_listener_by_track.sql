-- Who listened to each track the most (every member tied at the top is listed).
WITH m AS (SELECT track_key AS best_key, MAX(plays) AS best FROM member_track_plays GROUP BY track_key)
SELECT c.track_key AS track_key, c.user_id AS user_id, c.plays AS plays
FROM member_track_plays AS c JOIN m ON c.track_key = m.best_key AND c.plays = m.best
ORDER BY track_key, user_id
