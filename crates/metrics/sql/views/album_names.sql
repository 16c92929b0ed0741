-- Each album's name (the greatest of the names its plays carry), joined onto the counts after the
-- grouping, so that no metric aggregates a name per play.
SELECT album_id, MAX(album_name) AS name
FROM plays
WHERE album_id IS NOT NULL
GROUP BY album_id
