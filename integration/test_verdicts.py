#!/usr/bin/env python3
"""Check cnpg-ops' PITR verdicts against real PostgreSQL restores.

For every boundary of the catalog built by make_catalog.py (see facts.json):

  1. run `cnpg-ops catalog check DEST --to TARGET --server-name NAME --endpoint-url URL -o json`
     and compare its JSON with what the facts say it must answer. The JSON contract:
       recoverable  bool            exit code 0 when true, 1 when false
       target       string          the instant checked (RFC 3339), or "latest"
       backup_id    string | null   the anchor base backup
       timeline     number | null   the timeline recovery follows (recovery_target_timeline,
                                    default latest), i.e. the parent PostgreSQL writes into
                                    the new timeline's history file after the restore
       missing_wal  [segment name]  WAL segments needed but absent from the archive
       reasons      [string]        why not recoverable (non-empty when recoverable=false)
  2. perform the real restore -- with the backup cnpg-ops names when it says recoverable,
     otherwise with the newest DONE backup whose end_time <= target (from facts.json) --
     and check that PostgreSQL's outcome agrees: recoverable <=> PostgreSQL promoted with
     exactly the rows committed at or before the target.
  3. check that the restore by itself behaves as the facts predict (ground truth), so the
     harness is verified even when the binary is missing.

Also `cnpg-ops catalog show DEST --server-name NAME --endpoint-url URL -o json` must list
the backups with their ids and statuses and report the deleted segment as a gap.

The last line printed is `integration: N passed, M failed`; the exit status is 1 when any
check failed. Variables: CNPG_OPS_BIN (default target/debug/cnpg-ops under the repository
root), INTEGRATION_JOBS (parallel restores, default 2).
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from common import HERE, Results, load_env, log, parse_time, read_json, rfc3339, write_json
from restore import LATEST, RestoreResult, expected_rows, restore

MS = dt.timedelta(milliseconds=1)


# -------------------------------------------------------------------------- cases


@dataclasses.dataclass
class Case:
    name: str
    why: str
    target: object                    # datetime, or LATEST
    recoverable: bool
    backup_id: str | None = None      # anchor cnpg-ops must name (when recoverable)
    timeline: int | None = None       # timeline recovery follows (when recoverable), see build_cases
    missing_wal: list[str] = dataclasses.field(default_factory=list)   # must be reported
    no_backup: bool = False           # no DONE backup ends before the target: backup_id null
    fallback_backup: str | None = None   # backup restored when not recoverable
    expect_pg: str = "reached"        # reached | fatal | early_stop
    expect_fatal: str | None = None   # substring of PostgreSQL's FATAL line
    unusable_backups: list[str] = dataclasses.field(default_factory=list)  # restored too: must not reach

    @property
    def target_text(self) -> str:
        return LATEST if self.target == LATEST else rfc3339(self.target)


def build_cases(facts: dict) -> list[Case]:
    """The boundaries, computed from the recorded facts."""
    B = {b["label"]: b for b in facts["backups"]}
    G = {g["label"]: g for g in facts["groups"]}
    t = parse_time
    first = lambda g: t(G[g]["first_commit"])  # noqa: E731
    last = lambda g: t(G[g]["last_commit"])  # noqa: E731
    end = lambda b: t(B[b]["end_time"])  # noqa: E731
    mid = lambda a, b: a + (b - a) / 2  # noqa: E731
    switch = t(facts["timeline_switch"]["promote_requested_at"])
    gap = facts["deleted_segment"]["name"]
    b1, b2, f3, b4 = (B[k]["id"] for k in ("B1", "B2", "F3", "B4"))
    assert B["F3"]["status"] == "FAILED" and all(B[k]["status"] == "DONE" for k in ("B1", "B2", "B4"))

    def tli(target):
        """The timeline a restore to `target` follows, as PostgreSQL records it: with the
        default recovery_target_timeline = latest that is the newest timeline whose history
        contains the target -- timeline 2 for every target here, including those before the
        failover, whose WAL is read from timeline 1 files. (After the restore, the new
        timeline's history file names it as the parent; the ground truth checks that.)"""
        return 2

    def strictly_between(name, target, lo, hi):
        if not lo < target < hi:
            raise SystemExit(f"harness error: target {name} {rfc3339(target)} is not strictly between "
                             f"{rfc3339(lo)} and {rfc3339(hi)}; the catalog timing is off")
        return target

    cases = []
    x = strictly_between("before_first_backup_end",
                         mid(max(t(B["B1"]["begin_time"]), last("pre_b1")), first("during_b1")),
                         t(B["B1"]["begin_time"]), end("B1"))
    cases.append(Case(
        "before_first_backup_end", "before B1 (the oldest backup) is consistent: nothing to restore from",
        x, False, no_backup=True, fallback_backup=b1, expect_pg="fatal",
        expect_fatal="requested recovery stop point is before consistent recovery point"))
    for label, backup_before, during, after in (("B1", None, "during_b1", "after_b1"),
                                                ("B2", b1, "during_b2", "after_b2"),
                                                ("B4", b2, "during_b4", "after_b4")):
        if backup_before:
            x = strictly_between(f"just_before_{label}_end", end(label) - MS, last(during), end(label))
            cases.append(Case(f"just_before_{label}_end",
                              f"1 ms before {label} ends: the previous DONE backup is the anchor",
                              x, True, backup_before, tli(x)))
        x = strictly_between(f"just_after_{label}_end", end(label) + MS, end(label), first(after))
        cases.append(Case(f"just_after_{label}_end", f"1 ms after {label} ends: {label} is the anchor",
                          x, True, B[label]["id"], tli(x)))
    x = strictly_between("just_after_failed_end", end("F3") + MS, end("F3"), first("after_f3"))
    cases.append(Case(
        "just_after_failed_end",
        "1 ms after the FAILED backup F3 ends: the older DONE backup B2 is the anchor, never F3",
        x, True, b2, tli(x), unusable_backups=[f3]))
    x = strictly_between("timeline2_after_switch", mid(last("first_tli2"), first("before_b4")),
                         switch, first("before_b4"))
    cases.append(Case(
        "timeline2_after_switch",
        "on timeline 2 after the failover: replay timeline 1 then 2 from B2 (a timeline-1 backup)",
        x, True, b2, 2))
    x = strictly_between("before_gap", mid(last("after_b4"), first("before_gap")), end("B4"), first("in_gap"))
    cases.append(Case("before_gap", f"after B4, before the deleted segment {gap}", x, True, b4, 2))
    x = strictly_between("after_gap", mid(last("in_gap"), first("after_gap")), last("in_gap"), first("after_gap"))
    cases.append(Case(
        "after_gap", f"after the deleted segment {gap}: B4 cannot replay past it",
        x, False, missing_wal=[gap], fallback_backup=b4, expect_pg="fatal",
        expect_fatal="recovery ended before configured recovery target was reached"))
    head = facts["archive_head"]
    x = max(t(head["last_commit"]), t(head["last_modified"])) + dt.timedelta(seconds=2)
    cases.append(Case(
        "after_archive_head", f"2 s after the archive head {head['name']} was archived",
        x, False, missing_wal=[gap], fallback_backup=b4, expect_pg="fatal",
        expect_fatal="recovery ended before configured recovery target was reached"))
    cases.append(Case(
        "latest_with_gap", f"no target (latest): PostgreSQL would stop early at {gap} and promote",
        LATEST, False, missing_wal=[gap], fallback_backup=b4, expect_pg="early_stop"))
    return cases


def expected_backup(case: Case) -> str:
    """The backup the ground-truth restore uses: the expected anchor when the target is
    recoverable, otherwise the newest DONE backup ending before it (or, when there is none,
    the oldest backup, to show that PostgreSQL cannot use it)."""
    return case.backup_id if case.recoverable else case.fallback_backup


# ----------------------------------------------------------------------- cnpg-ops


@dataclasses.dataclass
class ToolRun:
    argv: list[str]
    returncode: int | None
    stdout: str
    stderr: str
    json: object = None
    error: str | None = None


def run_tool(binary: Path, args: list[str]) -> ToolRun:
    argv = [str(binary), *args]
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=180)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return ToolRun(argv, None, "", "", error=f"could not run: {exc}")
    run = ToolRun(argv, p.returncode, p.stdout, p.stderr)
    try:
        run.json = json.loads(p.stdout)
    except json.JSONDecodeError as exc:
        run.error = f"stdout is not JSON ({exc}); exit {p.returncode}; stderr: {p.stderr.strip()[-400:]}"
    return run


def check_verdict(case: Case, run: ToolRun) -> list[str]:
    """Compare `catalog check` output with the expectation; return the mismatches."""
    if run.error:
        return [run.error]
    out = run.json
    if not isinstance(out, dict):
        return [f"expected a JSON object, got {type(out).__name__}"]
    problems = []
    for key, types in (("recoverable", bool), ("target", str), ("backup_id", (str, type(None))),
                       ("timeline", (int, type(None))), ("missing_wal", list), ("reasons", list)):
        if key not in out:
            problems.append(f"field `{key}` missing")
        elif not isinstance(out[key], types) or (key == "timeline" and isinstance(out[key], bool)):
            problems.append(f"field `{key}` has type {type(out[key]).__name__}")
    if problems:
        return problems
    want_rc = 0 if out["recoverable"] else 1
    if run.returncode != want_rc:
        problems.append(f"exit code {run.returncode}, expected {want_rc} for recoverable={out['recoverable']}")
    if out["recoverable"] != case.recoverable:
        problems.append(f"recoverable={out['recoverable']}, expected {case.recoverable}; reasons={out['reasons']}")
    if case.target == LATEST:
        if out["target"] != LATEST:
            problems.append(f"target {out['target']!r}, expected 'latest'")
    else:
        try:
            if parse_time(out["target"]) != case.target:
                problems.append(f"target {out['target']} is not the instant {case.target_text}")
        except ValueError:
            problems.append(f"target {out['target']!r} is not a timestamp")
    if case.recoverable:
        if out["backup_id"] != case.backup_id:
            problems.append(f"backup_id {out['backup_id']}, expected {case.backup_id}")
        if out["timeline"] != case.timeline:
            problems.append(f"timeline {out['timeline']}, expected {case.timeline}")
        if out["missing_wal"]:
            problems.append(f"missing_wal {out['missing_wal']} on a recoverable target")
    else:
        if not out["reasons"]:
            problems.append("no reasons given for recoverable=false")
        if case.no_backup and out["backup_id"] is not None:
            problems.append(f"backup_id {out['backup_id']}, expected null (no DONE backup ends before the target)")
        for seg in case.missing_wal:
            if seg not in out["missing_wal"]:
                problems.append(f"missing_wal {out['missing_wal']} does not list the deleted segment {seg}")
    return problems


def walk(node, path=()):
    """Yield (path, value) for every value in a JSON document."""
    yield path, node
    if isinstance(node, dict):
        for k, v in node.items():
            yield from walk(v, path + (str(k),))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from walk(v, path + (str(i),))


def check_show(facts: dict, run: ToolRun, results: Results) -> None:
    """`catalog show -o json`: backups with ids and statuses, and the gap. The schema of this
    command is not fixed yet, so the checks look for the facts, not for exact field names:
    a list of objects carrying `backup_id` (or `id`) and `status`, and the deleted segment
    name under a key whose path mentions `gap` or `missing`."""
    if run.error:
        results.check("catalog show: JSON output", False, run.error)
        return
    results.check("catalog show: exit code 0 or 1", run.returncode in (0, 1), f"exit {run.returncode}")
    want = {b["id"]: b["status"] for b in facts["backups"]}
    listed = {}
    for _, node in walk(run.json):
        if isinstance(node, list) and node and all(isinstance(x, dict) for x in node):
            ids = {str(x.get("backup_id", x.get("id"))): x for x in node}
            if set(want) <= set(ids):
                listed = ids
                break
    results.check("catalog show: lists every backup id", bool(listed),
                  f"expected ids {sorted(want)}" if not listed else ", ".join(sorted(want)))
    if listed:
        wrong = {i: listed[i].get("status") for i in want if str(listed[i].get("status", "")).upper() != want[i]}
        results.check("catalog show: backup statuses (FAILED stays FAILED)", not wrong,
                      f"wrong statuses {wrong}, expected {want}" if wrong else
                      ", ".join(f"{i}={s}" for i, s in want.items()))
    gap = facts["deleted_segment"]["name"]
    hits = ["/".join(p) for p, v in walk(run.json)
            if isinstance(v, str) and gap in v and any("gap" in k.lower() or "missing" in k.lower() for k in p)]
    results.check(f"catalog show: reports the gap at {gap}", bool(hits),
                  f"found at {hits[0]}" if hits else f"{gap} not found under a 'gap'/'missing' key")


# ---------------------------------------------------------------------- the run


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workdir")
    ap.add_argument("--facts")
    ap.add_argument("--only", action="append", help="run only these case names")
    ap.add_argument("--label", default="integration", help="name on the summary line")
    ap.add_argument("--counts", help="also write the counts to this JSON file (run.sh sums them)")
    args = ap.parse_args(argv)
    # SIGTERM (CI cancelling the job) unwinds like Ctrl-C, so `finally` blocks stop PostgreSQL.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    settings = load_env(args.workdir)
    facts = read_json(args.facts or settings["workdir"] / "facts.json")
    repo = HERE.parent
    binary = Path(os.environ.get("CNPG_OPS_BIN") or repo / "target/debug/cnpg-ops")
    if not binary.is_absolute():
        binary = repo / binary
    jobs = int(os.environ.get("INTEGRATION_JOBS", "2"))
    cases = build_cases(facts)
    if args.only:
        cases = [c for c in cases if c.name in args.only]
    results = Results()
    report: dict = {"binary": str(binary), "cases": {}}
    common_args = ["--server-name", facts["server_name"], "--endpoint-url", facts["endpoint_url"], "-o", "json"]

    have_tool = binary.is_file() and os.access(binary, os.X_OK)
    print()
    if not have_tool:
        print("=" * 78)
        print(f"cnpg-ops binary NOT FOUND at {binary}")
        print("Build it (cargo build) or set CNPG_OPS_BIN. The verdict checks are skipped and")
        print("counted as one failure; the restores (ground truth) still run.")
        print("=" * 78)
    results.check("cnpg-ops binary exists", have_tool, str(binary))

    # 1. the verdicts
    verdicts: dict[str, ToolRun] = {}
    if have_tool:
        log("cnpg-ops catalog check: one run per target")
        for case in cases:
            run = run_tool(binary, ["catalog", "check", facts["dest"], "--to", case.target_text, *common_args])
            verdicts[case.name] = run
            problems = check_verdict(case, run)
            expect = (f"recoverable from {case.backup_id} on timeline {case.timeline}" if case.recoverable
                      else "NOT recoverable" + (f", missing {case.missing_wal}" if case.missing_wal else ""))
            results.check(f"verdict {case.name}: {expect}", not problems,
                          "; ".join(problems) if problems else case.target_text)
        log("cnpg-ops catalog show")
        check_show(facts, run_tool(binary, ["catalog", "show", facts["dest"], *common_args]), results)

    # 2. the restores; the backup is the one cnpg-ops names when it says recoverable
    plan: dict[tuple, None] = {}
    chosen: dict[str, str] = {}
    for case in cases:
        tool_json = verdicts[case.name].json if case.name in verdicts else None
        if isinstance(tool_json, dict) and tool_json.get("recoverable") and isinstance(tool_json.get("backup_id"), str):
            backup = tool_json["backup_id"]
        else:
            backup = case.backup_id if case.recoverable else case.fallback_backup
        chosen[case.name] = backup
        plan[(expected_backup(case), case.target_text)] = None  # ground truth
        plan[(backup, case.target_text)] = None                 # agreement (usually the same)
        for extra in case.unusable_backups:
            plan[(extra, case.target_text)] = None
    targets = {c.target_text: c.target for c in cases}
    log(f"{len(plan)} real restores, {jobs} at a time")
    started = time.monotonic()

    def do(key):
        backup, target_text = key
        name = f"{backup}-{target_text.replace(':', '').replace('+', 'p')}"
        return key, restore(settings, facts, backup, targets[target_text], name)

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        done: dict[tuple, RestoreResult] = dict(pool.map(do, plan))
    log(f"restores took {time.monotonic() - started:.0f}s")

    # 3. compare
    for case in cases:
        exp = expected_rows(facts, case.target)
        truth = done[(expected_backup(case), case.target_text)]
        res = done[(chosen[case.name], case.target_text)]
        print(f"\n{case.name}: {case.why}\n  target {case.target_text}; restored {truth.backup_id}: "
              f"{truth.describe(exp)}")
        if res is not truth:
            print(f"  restored {res.backup_id} (named by cnpg-ops): {res.describe(exp)}")
        entry = {"case": dataclasses.asdict(case) | {"target": case.target_text},
                 "restore": dataclasses.asdict(truth), "classification": truth.classify(exp)}
        # ground truth, from the facts alone
        truth_got = truth.classify(exp)
        ok = truth_got == case.expect_pg and (case.expect_fatal is None or case.expect_fatal in (truth.fatal or ""))
        want = case.expect_pg + (f" ({case.expect_fatal})" if case.expect_fatal else "")
        results.check(f"ground truth {case.name}: PostgreSQL from {truth.backup_id} -> {want}", ok,
                      truth.describe(exp))
        got = res.classify(exp)
        if case.recoverable and truth_got == "reached":
            results.check(f"ground truth {case.name}: PostgreSQL recovered along timeline {case.timeline}",
                          truth.history_parent == case.timeline,
                          f"new timeline {truth.timeline} branched from timeline {truth.history_parent} "
                          f"at {truth.history_switchpoint} ({truth.history_reason})")
        if case.name == "timeline2_after_switch" and truth_got == "reached":
            tlis = {f[:8] for f in truth.restored_files if len(f) == 24}
            results.check("ground truth timeline2_after_switch: replayed timeline 1 then timeline 2 WAL",
                          {"00000001", "00000002"} <= tlis and "00000002.history" in truth.restored_files,
                          f"restored {truth.restored_files}")
        if case.name == "latest_with_gap" and truth_got == "early_stop":
            missing = sorted(exp - set(truth.rows or []))
            gap_rows = facts["deleted_segment"]["rows"]
            results.check("ground truth latest_with_gap: stopped exactly at the deleted segment",
                          min(missing) == min(gap_rows), f"first missing row {min(missing)}, gap rows {gap_rows}")
        for extra in case.unusable_backups:
            bad = done[(extra, case.target_text)]
            results.check(f"ground truth {case.name}: the FAILED backup {extra} is unusable",
                          bad.classify(exp) != "reached", bad.describe(exp))
            entry.setdefault("unusable", []).append(dataclasses.asdict(bad))
        # agreement between cnpg-ops and PostgreSQL
        if case.name in verdicts and isinstance(verdicts[case.name].json, dict):
            said = verdicts[case.name].json.get("recoverable")
            entry["cnpg_ops"] = verdicts[case.name].json
            results.check(f"agreement {case.name}: cnpg-ops recoverable={said}, PostgreSQL {got}",
                          said == (got == "reached"), res.describe(exp))
        else:
            # the verdict check above already failed for this case; do not count it twice
            results.skip(f"agreement {case.name}",
                         "no usable cnpg-ops verdict" if have_tool else "cnpg-ops binary missing")
        report["cases"][case.name] = entry

    write_json(settings["workdir"] / "results.json", report)
    if results.skipped:
        print(f"\nskipped: {len(results.skipped)} agreement checks without a usable cnpg-ops verdict")
    if os.environ.get("INTEGRATION_STARTED"):
        print(f"elapsed: {time.time() - int(os.environ['INTEGRATION_STARTED']):.0f}s "
              f"(setup, catalog, {len(plan)} restores)")
    return results.summary(args.label, args.counts)


if __name__ == "__main__":
    sys.exit(main())
