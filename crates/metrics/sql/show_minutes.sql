-- Per member and show (a podcast, or an audiobook by its title): minutes and plays, most minutes first
-- (a member's top shows are their first rows of kind 'episode').
SELECT user_id, kind, show_name, CAST(SUM(ms_played) AS DOUBLE) / 60000.0 AS minutes, COUNT(*) AS plays
FROM spoken
GROUP BY user_id, kind, show_name
ORDER BY user_id, kind, minutes DESC, show_name
