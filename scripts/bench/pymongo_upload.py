"""The upload baseline: the original data_upload.py's way, one pymongo upsert per play.

    python pymongo_upload.py CONVERTED_DIR MONGODB_URI DATABASE

Reads every CONVERTED_DIR/**/*.jsonl (json-converter's recently-played records) and upserts each
record by its `_id` with `replace_one(..., upsert=True)`, one round trip per record, with `played_at`
as a date, as data-upload stores it. (The original upserted on {user_id, user_name, played_at}; by
`_id` the server finds the document through its primary index, which only helps the baseline.)
Prints {"records": N}.
"""

import json
import os
import sys
from datetime import datetime

from pymongo import MongoClient


def main():
    converted, uri, database = sys.argv[1:4]
    collection = MongoClient(uri)[database]["rawdata_recentlyplayed"]
    records = 0
    for folder, _, names in sorted(os.walk(converted)):
        for name in sorted(n for n in names if n.endswith(".jsonl")):
            with open(os.path.join(folder, name), encoding="utf-8") as f:
                for line in f:
                    record = json.loads(line)
                    record["played_at"] = datetime.fromisoformat(record["played_at"])
                    collection.replace_one({"_id": record["_id"]}, record, upsert=True)
                    records += 1
    print(json.dumps({"records": records}))


if __name__ == "__main__":
    main()
