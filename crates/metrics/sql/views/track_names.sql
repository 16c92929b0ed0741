-- Each track's names ("Artist - Song" and the song alone; the greatest of the names its plays carry),
-- joined onto the counts after the grouping, so that no metric aggregates a name per play.
SELECT track_key, MAX(artist_song_name) AS name, MAX(track_name) AS track_name
FROM plays
GROUP BY track_key
