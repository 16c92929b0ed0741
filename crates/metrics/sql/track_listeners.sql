-- Per track: how many members played it and how often (the group chart, and deep cuts where listeners = 1).
WITH t AS (
  SELECT track_key, COUNT(*) AS listeners, SUM(plays) AS plays, MIN(user_id) AS only_listener
  FROM member_track_plays GROUP BY track_key
)
SELECT t.track_key AS track_key, n.name AS name, n.track_name AS track_name, t.listeners AS listeners,
       t.plays AS plays, t.only_listener AS only_listener
FROM t
LEFT JOIN (SELECT track_key AS n_key, name, track_name FROM track_names) AS n ON t.track_key = n.n_key
ORDER BY listeners DESC, plays DESC, track_key
