-- Podcasts several friends follow: shows two or more members played an episode of.
SELECT show_name, COUNT(DISTINCT user_id) AS listeners, COUNT(*) AS plays,
       CAST(SUM(ms_played) AS DOUBLE) / 60000.0 AS minutes
FROM spoken
WHERE kind = 'episode'
GROUP BY show_name
HAVING COUNT(DISTINCT user_id) >= 2
ORDER BY listeners DESC, minutes DESC, show_name
