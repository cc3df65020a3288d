#!/usr/bin/env python3
"""A stand-in for the cnpg-ops binary, used ONLY to test this harness itself.

It answers `catalog check` and `catalog show` from WORKDIR/facts.json -- it knows every
row's commit time and segment, which the real tool never does -- so a run with

    CNPG_OPS_BIN=integration/selftest_oracle.py integration/run.sh

must be all green. That proves the plumbing (argument passing, JSON parsing, exit codes,
agreement with the restores, the `catalog show` checks). Set SELFTEST_ORACLE_LIE=1 to make
it answer every check the wrong way round; the run must then go red.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import parse_time, read_json  # noqa: E402
from restore import LSN_RE, format_lsn, parse_lsn  # noqa: E402


def segno(name: str) -> int:
    return int(name[8:16], 16) * 256 + int(name[16:24], 16)


def check(facts: dict, target_text: str, timeline: str = "latest") -> dict:
    ts = facts["timeline_switch"]
    latest = target_text == "latest"
    lsn = parse_lsn(target_text) if LSN_RE.match(target_text) else None
    target = None if latest or lsn is not None else parse_time(target_text)
    old = timeline == str(ts["parent_timeline"])  # pinned to the timeline the failover left
    done = [b for b in facts["backups"] if b["status"] == "DONE"]
    if old:
        done = [b for b in done if b["timeline"] == ts["parent_timeline"]]
    if latest:
        anchors = done
    elif lsn is not None:
        anchors = [b for b in done if parse_lsn(b["end_xlog"]) <= lsn]
    else:
        anchors = [b for b in done if parse_time(b["end_time"]) <= target]
    out = {"recoverable": False, "target": "latest" if latest else target_text,
           "backup_id": None, "timeline": None, "wal_to": None, "missing_wal": [], "reasons": [],
           "nearest": []}
    if not anchors:
        out["reasons"].append("no DONE backup ends at or before the target")
        return out
    anchor = max(anchors, key=lambda b: parse_time(b["end_time"]))
    out["backup_id"] = anchor["id"]
    if old:
        # the old timeline ends in its .partial; this catalog has no gap on timeline 1
        if latest:
            out["recoverable"] = True
            out["timeline"] = ts["parent_timeline"]
            out["wal_to"] = [p for p in ts["partial_segments"] if int(p[:8], 16) == ts["parent_timeline"]][0]
        else:
            out["reasons"].append("the oracle only knows latest on the old timeline")
        return out
    # PostgreSQL stops at the first commit after the target: that commit's segment is needed.
    if lsn is not None:
        later = [r for r in facts["rows"] if parse_lsn(r["lsn_after_commit"]) > lsn]
    else:
        later = [] if latest else [r for r in facts["rows"] if parse_time(r["commit_time"]) > target]
    last_needed = segno(later[0]["segment_after_commit"]) if later else None
    if lsn is not None:  # the segment holding the LSN itself
        last_needed = lsn // facts["wal_segment_size"]
    gap = facts["deleted_segment"]["name"]
    if segno(gap) >= segno(anchor["begin_wal"]) and (last_needed is None or segno(gap) <= last_needed):
        out["missing_wal"].append(gap)
        out["reasons"].append(f"WAL segment {gap} is missing")
        if latest:
            before = segno(gap) - 1
            out["nearest"].append({
                "target": format_lsn(before * facts["wal_segment_size"]),
                "timeline": facts["deleted_segment"]["timeline"],
                "description": f"exact: a position inside segment number {before}, the last before the gap"})
    if not latest and not later:
        out["reasons"].append("target is after the last archived commit")
    if not out["reasons"]:
        out["recoverable"] = True
        out["timeline"] = ts["new_timeline"]  # latest, as PostgreSQL follows it
    return out


def show(facts: dict) -> dict:
    gap = facts["deleted_segment"]["name"]
    return {
        "backups": [{"backup_id": b["id"], "status": b["status"], "end_time": b["end_time"]}
                    for b in facts["backups"]],
        "gaps": [{"timeline": facts["deleted_segment"]["timeline"], "first_missing": gap, "last_missing": gap}],
    }


def main(argv: list[str]) -> int:
    facts = read_json(Path(os.environ["INTEGRATION_WORKDIR"]) / "facts.json")
    lie = os.environ.get("SELFTEST_ORACLE_LIE") == "1"
    if argv[:2] == ["catalog", "check"]:
        timeline = argv[argv.index("--timeline") + 1] if "--timeline" in argv else "latest"
        out = check(facts, argv[argv.index("--to") + 1], timeline)
        if lie:
            out["recoverable"] = not out["recoverable"]
        print(json.dumps(out))
        return 0 if out["recoverable"] else 1
    if argv[:2] == ["catalog", "show"]:
        print(json.dumps(show(facts)))
        return 0
    print(f"selftest_oracle: unsupported arguments {argv}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
