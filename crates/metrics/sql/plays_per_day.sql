-- Plays per local day per member (the group's time zone).
SELECT user_id, SUBSTR(played_at_local, 1, 10) AS day, COUNT(*) AS plays
FROM plays
GROUP BY user_id, SUBSTR(played_at_local, 1, 10)
ORDER BY user_id, day
