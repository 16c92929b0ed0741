-- Plays by weekday (1 = Monday) and hour of day, in the group's time zone.
SELECT user_id, local_weekday AS weekday, local_hour AS hour, COUNT(*) AS plays
FROM plays
GROUP BY user_id, local_weekday, local_hour
ORDER BY user_id, weekday, hour
