-- Per member: minutes and plays of podcasts and of audiobooks (the imported spoken plays, kept apart
-- from the music: no other metric reads them).
SELECT user_id,
       CAST(SUM(CASE WHEN kind = 'episode' THEN ms_played ELSE 0 END) AS DOUBLE) / 60000.0 AS podcast_minutes,
       SUM(CASE WHEN kind = 'episode' THEN 1 ELSE 0 END) AS episodes,
       COUNT(DISTINCT CASE WHEN kind = 'episode' THEN show_name END) AS shows,
       CAST(SUM(CASE WHEN kind = 'audiobook' THEN ms_played ELSE 0 END) AS DOUBLE) / 60000.0 AS audiobook_minutes,
       SUM(CASE WHEN kind = 'audiobook' THEN 1 ELSE 0 END) AS chapters,
       COUNT(DISTINCT CASE WHEN kind = 'audiobook' THEN show_name END) AS books
FROM spoken
GROUP BY user_id
ORDER BY user_id
