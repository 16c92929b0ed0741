-- Artists each member discovered in the period: first played by them in the period (their whole history
-- is `links_all`, views/member_artist_debuts.sql), with the period's plays.
SELECT h.user_id AS user_id, h.artist_id AS artist_id, n.name AS name, h.plays AS plays
FROM member_artist_plays AS h
JOIN (SELECT user_id AS au, artist_id AS aa, first_ever FROM member_artist_debuts) AS e
  ON h.user_id = e.au AND h.artist_id = e.aa
LEFT JOIN (SELECT artist_id AS n_id, name FROM artist_names) AS n ON h.artist_id = n.n_id
WHERE h.artist_id IS NOT NULL AND h.first_here = e.first_ever
ORDER BY user_id, plays DESC, artist_id
