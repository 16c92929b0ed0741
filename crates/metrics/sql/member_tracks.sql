-- Per member and track: plays and minutes (tops by plays and by minutes are read from this).
SELECT p.user_id AS user_id, p.track_key AS track_key, n.name AS name, p.plays AS plays,
       CAST(p.ms AS DOUBLE) / 60000.0 AS minutes
FROM member_track_plays AS p
LEFT JOIN (SELECT track_key AS n_key, name FROM track_names) AS n ON p.track_key = n.n_key
ORDER BY user_id, plays DESC, track_key
