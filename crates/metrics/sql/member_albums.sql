-- Per member and album: plays and minutes.
SELECT p.user_id AS user_id, p.album_id AS album_id, n.name AS name, p.plays AS plays,
       CAST(p.ms AS DOUBLE) / 60000.0 AS minutes
FROM member_album_plays AS p
LEFT JOIN (SELECT album_id AS n_id, name FROM album_names) AS n ON p.album_id = n.n_id
ORDER BY user_id, plays DESC, album_id
