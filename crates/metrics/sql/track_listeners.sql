-- Per track: how many members played it and how often (the group chart, and deep cuts where listeners = 1).
SELECT track_key, MAX(artist_song_name) AS name, MAX(track_name) AS track_name, COUNT(DISTINCT user_id) AS listeners, COUNT(*) AS plays,
       MIN(user_id) AS only_listener
FROM plays
GROUP BY track_key
ORDER BY listeners DESC, plays DESC, track_key
