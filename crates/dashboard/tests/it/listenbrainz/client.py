"""A real ListenBrainz client (liblistenbrainz, from PyPI) against a running dashboard.

usage: client.py BASE_URL TOKEN NOW

Prints one JSON object: what each call answered. The Rust test (listen_api.rs) checks it and the
stores.
"""

from __future__ import annotations

import json
import sys

import liblistenbrainz
from liblistenbrainz import errors

base, token, now = sys.argv[1], sys.argv[2], int(sys.argv[3])
out: dict = {}

# The library's server setting is its base URL (it joins `/1/...` to it). Setting a token checks it
# with `GET /1/validate-token`.
client = liblistenbrainz.ListenBrainz(api_base_url=base)
try:
    liblistenbrainz.ListenBrainz(api_base_url=base).set_auth_token("00000000-0000-4000-8000-000000000000")
    out["invalid"] = "accepted"
except errors.InvalidAuthTokenException:
    out["invalid"] = "refused"
client.set_auth_token(token)
out["valid"] = "accepted"

single = liblistenbrainz.Listen(
    track_name="Some Resolve",
    artist_name="Röyksopp",
    release_name="Profound Mysteries II",
    listened_at=now - 600,
    recording_mbid="30d08f4c-d825-4ae1-b79c-44242cddd7c0",
    additional_info={"duration_ms": 402390, "isrc": "NO-RKS-22-00010", "submission_client": "liblistenbrainz"},
)
out["single"] = client.submit_single_listen(single)
imported = [
    liblistenbrainz.Listen(track_name=f"Track {i}", artist_name="Artist", listened_at=now - 3600 - i * 300)
    for i in range(3)
]
out["import"] = client.submit_multiple_listens(imported)
playing = liblistenbrainz.Listen(track_name="Now", artist_name="Someone", additional_info={"duration": 200})
out["playing_now"] = client.submit_playing_now(playing)

# A listen ListenBrainz refuses (before 2002-10-01): 400 with its message.
try:
    client.submit_single_listen(liblistenbrainz.Listen(track_name="Old", artist_name="A", listened_at=1_000_000))
    out["old"] = "accepted"
except errors.ListenBrainzAPIException as error:
    out["old"] = {"status": error.status_code, "message": error.message}

# A token that is no one's: 401.
other = liblistenbrainz.ListenBrainz(api_base_url=base)
other.set_auth_token("00000000-0000-4000-8000-000000000000", check_validity=False)
try:
    other.submit_single_listen(single)
    out["bad_token"] = "accepted"
except errors.ListenBrainzAPIException as error:
    out["bad_token"] = {"status": error.status_code, "message": error.message}

print(json.dumps(out))
