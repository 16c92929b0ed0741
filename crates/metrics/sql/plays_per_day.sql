-- Plays per local day per member (the group's time zone).
SELECT user_id, local_day AS day, COUNT(*) AS plays
FROM plays
GROUP BY user_id, local_day
ORDER BY user_id, day
