-- Per member and recording in the period: plays and milliseconds played. Every track metric reads this,
-- not the plays: the one grouping of the plays by member and recording, on every engine (names come
-- from views/track_names.sql).
--
-- One recording across services and releases (earshot-core's `recording`): plays are grouped by their
-- `recording_key` (the ISRC, else the MusicBrainz id, else the normalised names). A play known by its
-- names only (a scrobble without ids, an imported Spotify play not enriched yet) joins the recording a
-- play of the same names carries an id for, in the period (the least such id when several do). Each
-- recording is then named by its least Spotify track id when any play of it has one (the key its
-- pages and links use), else by its own key.
WITH g AS (
       SELECT user_id, track_id, track_key, COALESCE(recording_key, track_key) AS recording_key, name_key,
              plays, ms
       FROM (
         SELECT user_id, track_id, track_key, recording_key, name_key, COUNT(*) AS plays, SUM(duration_ms) AS ms
         FROM plays
         GROUP BY user_id, track_id, track_key, recording_key, name_key
       ) AS each_key
     ),
     named AS (
       SELECT name_key AS n_key, MIN(recording_key) AS n_recording
       FROM g
       WHERE name_key IS NOT NULL AND recording_key <> name_key
       GROUP BY name_key
     ),
     r AS (
       SELECT g.user_id AS user_id, g.track_id AS track_id, g.track_key AS track_key,
              CASE WHEN g.recording_key = g.name_key AND n.n_recording IS NOT NULL THEN n.n_recording
                   ELSE g.recording_key END AS recording,
              g.plays AS plays, g.ms AS ms
       FROM g
       LEFT JOIN named AS n ON g.name_key = n.n_key
     ),
     k AS (
       SELECT recording AS k_recording, COALESCE(MIN(track_id), MIN(track_key)) AS canonical
       FROM r
       GROUP BY recording
     )
SELECT r.user_id AS user_id, k.canonical AS track_key, SUM(r.plays) AS plays, SUM(r.ms) AS ms
FROM r
JOIN k ON r.recording = k.k_recording
GROUP BY r.user_id, k.canonical
