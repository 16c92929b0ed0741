-- Each normalised artist name a link with a Spotify artist id carries (`artist_key`), over the whole
-- history: the id an artist credited by that name only (a play from beyond Spotify) counts as, the
-- least when several artists share the key.
SELECT artist_key, MIN(artist_id) AS artist_id
FROM links_all
WHERE artist_id IS NOT NULL AND artist_key IS NOT NULL
GROUP BY artist_key
