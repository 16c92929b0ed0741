-- Artists each member discovered in the period: first played by them in the period (their whole history
-- is `links_all`), with the period's plays.
SELECT h.user_id AS user_id, h.artist_id AS artist_id, h.name AS name, h.plays AS plays
FROM (SELECT user_id, artist_id, MAX(artist_name) AS name, COUNT(*) AS plays, MIN(played_at) AS first_here
      FROM links WHERE artist_id IS NOT NULL GROUP BY user_id, artist_id) AS h
JOIN (SELECT user_id AS au, artist_id AS aa, MIN(played_at) AS first_ever
      FROM links_all WHERE artist_id IS NOT NULL GROUP BY user_id, artist_id) AS e
  ON h.user_id = e.au AND h.artist_id = e.aa
WHERE h.first_here = e.first_ever
ORDER BY user_id, plays DESC, artist_id
