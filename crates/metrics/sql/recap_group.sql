-- The group's recap for the period: its most shared track (most members, then most plays, then key) and
-- the pair with the closest taste (views/similarity.sql; no pair when fewer than two members share an artist).
WITH best AS (
  SELECT track_key, COUNT(*) AS listeners, SUM(plays) AS plays
  FROM member_track_plays
  GROUP BY track_key
  ORDER BY listeners DESC, plays DESC, track_key
  LIMIT 1
),
chart AS (
  SELECT 'group' AS scope, b.track_key AS most_shared_track_key, n.name AS most_shared_track_name,
         b.listeners AS most_shared_listeners, b.plays AS most_shared_plays
  FROM best AS b
  LEFT JOIN (SELECT track_key AS n_key, name FROM track_names) AS n ON b.track_key = n.n_key
),
pair AS (
  SELECT 'group' AS pair_scope, me AS closest_a, friend AS closest_b, 100.0 * similarity AS closest_taste_match
  FROM similarity
  WHERE me < friend
  ORDER BY closest_taste_match DESC, closest_a, closest_b
  LIMIT 1
)
SELECT c.scope AS scope, c.most_shared_track_key AS most_shared_track_key,
       c.most_shared_track_name AS most_shared_track_name, c.most_shared_listeners AS most_shared_listeners,
       c.most_shared_plays AS most_shared_plays, p.closest_a AS closest_a, p.closest_b AS closest_b,
       p.closest_taste_match AS closest_taste_match
FROM chart AS c
LEFT JOIN pair AS p ON c.scope = p.pair_scope
