#!/usr/bin/env python3
"""Exact verdicts read from the archived WAL, checked against the database's own records
and against real restores.

The catalog is the one make_catalog.py builds (see facts.json): PostgreSQL 15 with
track_commit_timestamp on, every row one transaction whose xid and commit timestamp the
harness recorded, a named restore point after the group after_b2, barman-cloud's own
`barman_<backup id>` restore points, a failover to timeline 2, and a deleted segment (the
gap) after backup B4.

Cases (each asks `cnpg-ops catalog check ... -o json`, then restores for real with
barman-cloud-restore and PostgreSQL's own recovery, and requires that both agree):

  last_commit_minus_1us  1 µs before the last commit a restore from B4 reaches (the last
                         row before the gap): recoverable, exact; PostgreSQL stops before
                         that very transaction
  last_commit_plus_1us   1 µs after it: NOT recoverable, exact, although the segment that
                         holds the commit was uploaded later (which is all `--no-wal` sees,
                         so it says recoverable); PostgreSQL fails with "recovery ended
                         before configured recovery target was reached"
  tli1_minus_1us/plus    the same on timeline 1 (`--timeline 1`), whose last segment
                         survives only as a .partial file
  xid                    a transaction of after_b2: placed in the WAL, anchored on B2 with
                         backupID pinned; PostgreSQL stops after that transaction
  name                   the restore point made with pg_create_restore_point(), found by name
  name_barman            barman_<B4>, made by barman-cloud-backup after B4 stopped
  name_missing           a name no restore point has: NOT recoverable; PostgreSQL fails

Also `catalog show`: the window that ends at the gap ends at the last commit before it.

The last line printed is `LABEL: N passed, M failed`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import signal
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from common import HERE, Results, load_env, log, parse_time, read_json, rfc3339
from restore import Name, Xid, history_rows, parse_lsn, restore
from test_verdicts import run_tool

US = dt.timedelta(microseconds=1)
NOT_REACHED = "recovery ended before configured recovery target was reached"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workdir")
    ap.add_argument("--label", default="exact")
    ap.add_argument("--counts")
    args = ap.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    settings = load_env(args.workdir)
    facts = read_json(settings["workdir"] / "facts.json")
    binary = Path(os.environ.get("CNPG_OPS_BIN") or HERE.parent / "target/debug/cnpg-ops")
    jobs = int(os.environ.get("INTEGRATION_JOBS", "2"))
    results = Results()
    common = ["--server-name", facts["server_name"], "--endpoint-url", facts["endpoint_url"], "-o", "json"]
    B = {b["label"]: b for b in facts["backups"]}

    def check(to: str, *extra: str):
        run = run_tool(binary, ["catalog", "check", facts["dest"], "--to", to, *extra, *common])
        return run.json if isinstance(run.json, dict) else {"error": run.error or run.stderr}

    # The last commit a restore from B4 reaches: the last row before the gap's rows.
    tl2 = history_rows(facts, 2)
    gap_rows = set(facts["deleted_segment"]["rows"])
    first_gap = min(i for i, r in enumerate(tl2) if r["id"] in gap_rows)
    last2 = tl2[first_gap - 1]
    tl1 = history_rows(facts, 1)
    last1 = tl1[-1]
    after_b2 = next(g for g in facts["groups"] if g["label"] == "after_b2")["row_ids"]
    xid_row = next(r for r in facts["rows"] if r["id"] == after_b2[len(after_b2) // 2])
    rp = facts["restore_points"][0]
    barman_rp = f"barman_{B['B4']['id']}"

    def rows_until(rows, t):
        return {r["id"] for r in rows if parse_time(r["commit_time"]) <= t}

    def rows_through_lsn(rows, lsn):
        return {r["id"] for r in rows if parse_lsn(r["lsn_after_commit"]) <= lsn}

    # (name, --to, extra args, restore target, recovery_target_timeline, expectations)
    cases = []
    c2 = parse_time(last2["commit_time"])
    cases.append(dict(name="last_commit_minus_1us", to=rfc3339(c2 - US), target=c2 - US, tli=None,
                      recoverable=True, backup=B["B4"]["id"], stop_xid=last2["xid"],
                      rows=rows_until(tl2[:first_gap], c2 - US),
                      pg_stop=f"before commit of transaction {last2['xid']}"))
    cases.append(dict(name="last_commit_plus_1us", to=rfc3339(c2 + US), target=c2 + US, tli=None,
                      recoverable=False, fallback=B["B4"]["id"], last_xid=last2["xid"], latest=c2 - US,
                      fatal=NOT_REACHED, approximate_says=True))
    c1 = parse_time(last1["commit_time"])
    cases.append(dict(name="tli1_minus_1us", to=rfc3339(c1 - US), extra=["--timeline", "1"], target=c1 - US,
                      tli="1", recoverable=True, backup=B["B2"]["id"], stop_xid=last1["xid"],
                      rows=rows_until(tl1, c1 - US), pg_stop=f"before commit of transaction {last1['xid']}"))
    cases.append(dict(name="tli1_plus_1us", to=rfc3339(c1 + US), extra=["--timeline", "1"], target=c1 + US,
                      tli="1", recoverable=False, fallback=B["B2"]["id"], last_xid=last1["xid"],
                      latest=c1 - US, fatal=NOT_REACHED))
    cases.append(dict(name="xid", to=f"xid:{xid_row['xid']}", target=Xid(xid_row["xid"]), tli=None,
                      recoverable=True, backup=B["B2"]["id"], stop_xid=xid_row["xid"], pinned=True,
                      rows=rows_through_lsn(tl2, parse_lsn(xid_row["lsn_after_commit"])),
                      pg_stop=f"after commit of transaction {xid_row['xid']}"))
    cases.append(dict(name="name", to=f"name:{rp['name']}", target=Name(rp["name"]), tli=None,
                      recoverable=True, backup=B["B2"]["id"], stop_name=rp["name"], pinned=True,
                      rows=rows_through_lsn(tl2, parse_lsn(rp["lsn_after"])),
                      pg_stop=f'at restore point "{rp["name"]}"'))
    cases.append(dict(name="name_barman", to=f"name:{barman_rp}", target=Name(barman_rp), tli=None,
                      recoverable=True, backup=B["B4"]["id"], stop_name=barman_rp, pinned=True,
                      pg_stop=f'at restore point "{barman_rp}"'))
    cases.append(dict(name="name_missing", to="name:no-such-point", target=Name("no-such-point"), tli=None,
                      recoverable=False, fallback=B["B4"]["id"], fatal=NOT_REACHED))

    # 1. the verdicts
    log("cnpg-ops catalog check, reading the WAL")
    said = {}
    for c in cases:
        out = check(c["to"], *c.get("extra", []))
        said[c["name"]] = out
        problems = []
        wal = out.get("wal") or {}
        if out.get("recoverable") is not c["recoverable"]:
            problems.append(f"recoverable={out.get('recoverable')}, expected {c['recoverable']}")
        if out.get("exact") is not True:
            problems.append(f"exact={out.get('exact')}")
        if c["recoverable"]:
            if out.get("backup_id") != c["backup"]:
                problems.append(f"backup_id {out.get('backup_id')}, expected {c['backup']}")
            if c.get("pinned") and out.get("requires_backup_id") is not True:
                problems.append("backupID not required")
            stop = wal.get("stop") or {}
            if "stop_xid" in c and stop.get("xid") != c["stop_xid"]:
                problems.append(f"stop record {stop}, expected transaction {c['stop_xid']}")
            if "stop_name" in c and stop.get("name") != c["stop_name"]:
                problems.append(f"stop record {stop}, expected restore point {c['stop_name']}")
        else:
            if not out.get("reasons"):
                problems.append("no reasons")
            if "last_xid" in c:
                last = wal.get("last_transaction") or {}
                if last.get("xid") != c["last_xid"]:
                    problems.append(f"last transaction {last}, expected {c['last_xid']}")
                got = wal.get("latest_time_target")
                if got is None or parse_time(got) != c["latest"]:
                    problems.append(f"latest_time_target {got}, expected {rfc3339(c['latest'])}")
        if "stop_xid" in c and c["recoverable"]:
            row = next(r for r in facts["rows"] if r["xid"] == c["stop_xid"])
            stop = wal.get("stop") or {}
            if stop.get("time") is None or parse_time(stop["time"]) != parse_time(row["commit_time"]):
                problems.append(f"stop time {stop.get('time')}, PostgreSQL recorded {row['commit_time']}")
        results.check(f"verdict {c['name']} ({c['to']}): {'recoverable' if c['recoverable'] else 'NOT recoverable'}, exact",
                      not problems and "error" not in out, "; ".join(problems) or out.get("error") or
                      "; ".join(out.get("reasons", []))[:300])
        if c.get("approximate_says") is not None:
            approx = check(c["to"], "--no-wal", *c.get("extra", []))
            results.check(f"verdict {c['name']} with --no-wal: upload times alone say recoverable={c['approximate_says']}, approximate",
                          approx.get("recoverable") is c["approximate_says"] and approx.get("exact") is False,
                          f"recoverable={approx.get('recoverable')} exact={approx.get('exact')}")

    # catalog show: the window that ends at the gap ends at the last commit before it.
    run = run_tool(binary, ["catalog", "show", facts["dest"], *common])
    show = run.json if isinstance(run.json, dict) else {}
    windows = [w for tw in show.get("recovery_window", []) if tw.get("timeline") == 2 for w in tw["windows"]
               if w.get("end_reason") == "gap"]
    w = windows[-1] if windows else {}
    last = w.get("last_transaction") or {}
    results.check("show: the window ending at the gap ends 1 µs before the last commit before it",
                  last.get("xid") == last2["xid"] and w.get("latest_time_target") is not None
                  and parse_time(w["latest_time_target"]) == c2 - US,
                  f"last_transaction {last}, latest_time_target {w.get('latest_time_target')}")

    # 2. the restores: the backup cnpg-ops names, or the fallback for unrecoverable targets
    def do(c):
        out = said[c["name"]]
        backup = out.get("backup_id") if out.get("recoverable") else c.get("fallback") or c.get("backup")
        backup = backup or c.get("backup") or c.get("fallback")
        name = f"exact-{c['name']}"
        return c["name"], restore(settings, facts, backup, c["target"], name, c["tli"])

    log(f"{len(cases)} real restores, {jobs} at a time")
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        done = dict(pool.map(do, cases))

    # 3. agreement
    for c in cases:
        r = done[c["name"]]
        out = said[c["name"]]
        promoted = r.outcome == "promoted" and not r.fatal
        detail = r.describe()
        results.check(f"agreement {c['name']}: cnpg-ops recoverable={out.get('recoverable')}, PostgreSQL {r.outcome}",
                      out.get("recoverable") is promoted, detail)
        if c["recoverable"]:
            ok = promoted and c["pg_stop"] in (r.stop_message or "")
            results.check(f"ground truth {c['name']}: PostgreSQL stopped {c['pg_stop']}", ok,
                          r.stop_message or detail)
            if "rows" in c and promoted:
                present = set(r.rows or [])
                results.check(f"ground truth {c['name']}: exactly the rows committed up to the target",
                              present == c["rows"],
                              f"missing {sorted(c['rows'] - present)}, unexpected {sorted(present - c['rows'])}")
        else:
            results.check(f"ground truth {c['name']}: PostgreSQL fails with \"{c['fatal']}\"",
                          c["fatal"] in (r.fatal or ""), detail)
    return results.summary(args.label, args.counts)


if __name__ == "__main__":
    sys.exit(main())
