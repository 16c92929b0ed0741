-- "Obscure" plays (popularity < 30) where Spotify still returned popularity; unknown is counted apart, never as 0.
SELECT user_id,
       SUM(CASE WHEN popularity < 30 THEN 1 ELSE 0 END) AS obscure_plays,
       SUM(CASE WHEN popularity IS NULL THEN 1 ELSE 0 END) AS unknown_popularity_plays,
       SUM(CASE WHEN popularity IS NOT NULL THEN 1 ELSE 0 END) AS known_popularity_plays
FROM plays
GROUP BY user_id
ORDER BY user_id
