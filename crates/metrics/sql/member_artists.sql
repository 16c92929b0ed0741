-- Per member and artist: plays and minutes, from the (play, artist) links (which carry the play's length).
SELECT p.user_id AS user_id, p.artist_id AS artist_id, n.name AS name, p.plays AS plays,
       CAST(p.ms AS DOUBLE) / 60000.0 AS minutes
FROM member_artist_plays AS p
LEFT JOIN (SELECT artist_id AS n_id, name FROM artist_names) AS n ON p.artist_id = n.n_id
ORDER BY user_id, plays DESC, artist_id
