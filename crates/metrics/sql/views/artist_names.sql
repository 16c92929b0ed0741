-- Each artist's name (the greatest of the names the links carry for its id, or for its `name:` key when
-- it has no Spotify id): joined onto the counts after the grouping, so that no metric aggregates a name
-- per play.
SELECT artist_id, MAX(artist_name) AS name
FROM (
  SELECT CASE WHEN artist_id IS NOT NULL THEN artist_id ELSE CONCAT('name:', artist_key) END AS artist_id,
         artist_name
  FROM links
) AS named
WHERE artist_id IS NOT NULL
GROUP BY artist_id
