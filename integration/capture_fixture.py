#!/usr/bin/env python3
"""Copy a real catalog from the bucket into a small directory for hermetic tests.

    capture_fixture.py OUTDIR [--workdir DIR] [--facts facts.json]

OUTDIR receives:
  manifest.json   every object under <prefix>/<server>/: key, size, LastModified (RFC 3339),
                  ETag, and `content` (the path of its copy below objects/, or null);
  objects/<key>   the exact bytes, as stored in the bucket (still compressed when barman
                  compressed them), of every backup.info, timeline history file
                  (`*.history[.cmp]`) and backup history file (`*.backup[.cmp]`);
  facts.json      what make_catalog.py recorded about the catalog (rows excluded), i.e. the
                  expected answers: backups and statuses, the timeline switch, the deleted
                  segment, the archive head.

Tar files and WAL segment bodies are NOT copied; the manifest still lists them with their
sizes, so a listing can be rebuilt without the bytes.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from pathlib import Path

from common import list_objects, load_env, log, read_json, rfc3339, s3_client, write_json

# Objects whose contents the hermetic tests need.
CONTENT_RE = re.compile(
    r"(/base/[^/]+/backup\.info$)"
    r"|(/wals/[0-9A-F]{8}\.history(\.[a-z0-9]+)?$)"
    r"|(/wals/[0-9A-F]{16}/[0-9A-F]{24}\.[0-9A-F]{8}\.backup(\.[a-z0-9]+)?$)"
)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("outdir")
    ap.add_argument("--workdir")
    ap.add_argument("--facts")
    ap.add_argument("--force", action="store_true", help="replace OUTDIR if it exists")
    args = ap.parse_args(argv)
    settings = load_env(args.workdir)
    facts = read_json(args.facts or settings["workdir"] / "facts.json")
    out = Path(args.outdir)
    if out.exists():
        if not args.force:
            print(f"{out} exists; pass --force to replace it", file=sys.stderr)
            return 2
        shutil.rmtree(out)
    (out / "objects").mkdir(parents=True)

    s3 = s3_client(facts["endpoint_url"])
    bucket, root = facts["bucket"], facts["catalog_root"]
    entries = []
    copied = 0
    for obj in sorted(list_objects(s3, bucket, root), key=lambda o: o["Key"]):
        key = obj["Key"]
        entry = {
            "key": key,
            "size": obj["Size"],
            "last_modified": rfc3339(obj["LastModified"]),
            "etag": obj.get("ETag", "").strip('"'),
            "content": None,
        }
        if CONTENT_RE.search(key):
            dest = out / "objects" / key
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
            entry["content"] = f"objects/{key}"
            copied += 1
        entries.append(entry)

    write_json(out / "manifest.json", {
        "format": 1,
        "source": "barman-cloud 3.19.1 and PostgreSQL 15, built by integration/make_catalog.py",
        "bucket": bucket,
        "dest": facts["dest"],
        "server_name": facts["server_name"],
        "catalog_root": root,
        "objects": entries,
    })
    trimmed = {k: v for k, v in facts.items() if k not in ("rows", "events", "endpoint_url")}
    write_json(out / "facts.json", trimmed)
    log(f"fixture in {out}: {len(entries)} objects listed, {copied} copied")
    return 0


if __name__ == "__main__":
    sys.exit(main())
