-- For each pair and time range: how many tracks their latest top-tracks lists share.
WITH latest AS (SELECT user_id, time_range, MAX(date_data_fetched) AS day FROM top GROUP BY user_id, time_range),
     l AS (
       SELECT t.user_id AS user_id, t.time_range AS time_range, t.track_id AS track_id
       FROM top AS t JOIN latest AS d ON t.user_id = d.user_id AND t.time_range = d.time_range AND t.date_data_fetched = d.day
     )
SELECT a.member_a AS member_a, b.member_b AS member_b, a.time_range AS time_range, COUNT(*) AS overlap
FROM (SELECT user_id AS member_a, time_range, track_id FROM l) AS a
JOIN (SELECT user_id AS member_b, time_range AS range_b, track_id FROM l) AS b
  ON a.track_id = b.track_id AND a.time_range = b.range_b
WHERE a.member_a < b.member_b
GROUP BY a.member_a, b.member_b, a.time_range
ORDER BY time_range, overlap DESC, member_a, member_b
