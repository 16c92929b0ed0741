-- The recap ("Wrapped") of each member for the period: minutes listened; top track, artist and album
-- (most plays, then the smallest id); artists discovered (first played in the period, read from
-- `links_all`, the member's whole history); the longest run of consecutive local days with a play; the
-- busiest local day (earliest on ties); and how many tracks the member is the top listener of (ties count).
WITH tc AS (
  SELECT p.user_id AS user_id, p.track_key AS track_key, n.name AS name, p.plays AS plays
  FROM member_track_plays AS p
  LEFT JOIN (SELECT track_key AS n_key, name FROM track_names) AS n ON p.track_key = n.n_key
),
top_track AS (
  SELECT t.user_id AS tt_user, MIN(t.track_key) AS tt_key
  FROM tc AS t
  JOIN (SELECT user_id AS bu, MAX(plays) AS best FROM tc GROUP BY user_id) AS b ON t.user_id = b.bu AND t.plays = b.best
  GROUP BY t.user_id
),
ac AS (
  SELECT p.user_id AS user_id, p.artist_id AS artist_id, n.name AS name, p.plays AS plays
  FROM member_artist_plays AS p
  LEFT JOIN (SELECT artist_id AS n_id, name FROM artist_names) AS n ON p.artist_id = n.n_id
  WHERE p.artist_id IS NOT NULL
),
top_artist AS (
  SELECT a.user_id AS ta_user, MIN(a.artist_id) AS ta_id
  FROM ac AS a
  JOIN (SELECT user_id AS bu, MAX(plays) AS best FROM ac GROUP BY user_id) AS b ON a.user_id = b.bu AND a.plays = b.best
  GROUP BY a.user_id
),
lc AS (
  SELECT p.user_id AS user_id, p.album_id AS album_id, n.name AS name, p.plays AS plays
  FROM member_album_plays AS p
  LEFT JOIN (SELECT album_id AS n_id, name FROM album_names) AS n ON p.album_id = n.n_id
),
top_album AS (
  SELECT l.user_id AS tl_user, MIN(l.album_id) AS tl_id
  FROM lc AS l
  JOIN (SELECT user_id AS bu, MAX(plays) AS best FROM lc GROUP BY user_id) AS b ON l.user_id = b.bu AND l.plays = b.best
  GROUP BY l.user_id
),
discovered AS (
  SELECT h.user_id AS d_user, COUNT(*) AS artists_discovered
  FROM member_artist_plays AS h
  JOIN (SELECT user_id AS au, artist_id AS aa, first_ever FROM member_artist_debuts) AS e
    ON h.user_id = e.au AND h.artist_id = e.aa
  WHERE h.artist_id IS NOT NULL AND h.first_here = e.first_ever
  GROUP BY h.user_id
),
days AS (
  SELECT user_id, local_day AS day, local_day_number AS n, COUNT(*) AS plays
  FROM plays GROUP BY user_id, local_day, local_day_number
),
-- Day numbers, stored by the converter: consecutive days differ by one.
numbered AS (
  SELECT user_id, n FROM days
),
starts AS (
  SELECT x.user_id AS s_user, x.n AS s_n
  FROM numbered AS x
  LEFT JOIN (SELECT user_id AS pu, n + 1 AS after_n FROM numbered) AS p ON x.user_id = p.pu AND x.n = p.after_n
  WHERE p.pu IS NULL
),
ends AS (
  SELECT x.user_id AS e_user, x.n AS e_n
  FROM numbered AS x
  LEFT JOIN (SELECT user_id AS nu, n - 1 AS before_n FROM numbered) AS q ON x.user_id = q.nu AND x.n = q.before_n
  WHERE q.nu IS NULL
),
runs AS (
  SELECT s.s_user AS r_user, s.s_n AS r_start, MIN(e.e_n) AS r_end
  FROM starts AS s JOIN ends AS e ON s.s_user = e.e_user
  WHERE e.e_n >= s.s_n
  GROUP BY s.s_user, s.s_n
),
streak AS (
  SELECT r_user AS st_user, MAX(r_end - r_start + 1) AS longest_streak_days FROM runs GROUP BY r_user
),
busiest AS (
  SELECT c.user_id AS bd_user, MIN(c.day) AS busiest_day, MAX(c.plays) AS busiest_day_plays
  FROM days AS c
  JOIN (SELECT user_id AS bu, MAX(plays) AS best FROM days GROUP BY user_id) AS b ON c.user_id = b.bu AND c.plays = b.best
  GROUP BY c.user_id
),
leader AS (
  SELECT c.user_id AS lo_user, COUNT(*) AS top_listener_of
  FROM member_track_plays AS c
  JOIN (SELECT track_key AS best_key, MAX(plays) AS best FROM member_track_plays GROUP BY track_key) AS m
    ON c.track_key = m.best_key AND c.plays = m.best
  GROUP BY c.user_id
),
summary AS (
  SELECT user_id, SUM(plays) AS plays, CAST(SUM(ms) AS DOUBLE) / 60000.0 AS minutes FROM member_track_plays GROUP BY user_id
)
SELECT s.user_id AS user_id, s.plays AS plays, s.minutes AS minutes,
       tt.tt_key AS top_track_key, ttn.name AS top_track_name, ttn.plays AS top_track_plays,
       ta.ta_id AS top_artist_id, tan.name AS top_artist_name, tan.plays AS top_artist_plays,
       tl.tl_id AS top_album_id, tln.name AS top_album_name, tln.plays AS top_album_plays,
       COALESCE(dv.artists_discovered, 0) AS artists_discovered,
       st.longest_streak_days AS longest_streak_days,
       bd.busiest_day AS busiest_day, bd.busiest_day_plays AS busiest_day_plays,
       COALESCE(lo.top_listener_of, 0) AS top_listener_of
FROM summary AS s
LEFT JOIN top_track AS tt ON s.user_id = tt.tt_user
LEFT JOIN (SELECT user_id AS n_user, track_key AS n_key, name, plays FROM tc) AS ttn ON tt.tt_user = ttn.n_user AND tt.tt_key = ttn.n_key
LEFT JOIN top_artist AS ta ON s.user_id = ta.ta_user
LEFT JOIN (SELECT user_id AS n_user, artist_id AS n_id, name, plays FROM ac) AS tan ON ta.ta_user = tan.n_user AND ta.ta_id = tan.n_id
LEFT JOIN top_album AS tl ON s.user_id = tl.tl_user
LEFT JOIN (SELECT user_id AS n_user, album_id AS n_id, name, plays FROM lc) AS tln ON tl.tl_user = tln.n_user AND tl.tl_id = tln.n_id
LEFT JOIN discovered AS dv ON s.user_id = dv.d_user
LEFT JOIN streak AS st ON s.user_id = st.st_user
LEFT JOIN busiest AS bd ON s.user_id = bd.bd_user
LEFT JOIN leader AS lo ON s.user_id = lo.lo_user
ORDER BY user_id
