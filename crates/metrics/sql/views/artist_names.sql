-- Each artist's name (the greatest of the names the links carry for its id): joined onto the counts
-- after the grouping, so that no metric aggregates a name per play.
SELECT artist_id, MAX(artist_name) AS name
FROM links
GROUP BY artist_id
