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

Two targets are not instants, and pin recovery_target_timeline (`--timeline`):

  old_timeline_partial  `--to latest --timeline 1`: recoverable, `wal_to` is the timeline-1
                        .partial; restored with recovery_target_timeline = '1' and no target,
                        PostgreSQL replays to the end of that .partial (barman-cloud-wal-restore
                        hands it out for the segment name) and promotes with exactly the
                        timeline-1 rows.
  exact_suggestion      `--to latest` is not recoverable (the gap); the `exact:` entry of its
                        `nearest` array names an LSN and a timeline. `--to LSN --timeline T`
                        must be recoverable, and a restore with recovery_target_lsn and
                        recovery_target_timeline = T must stop there and promote, its rows a
                        prefix of the timeline's history. The ground truth restores the
                        facts' own LSN: the start of the last segment before the gap.

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
from restore import (
    LATEST,
    LSN_RE,
    Lsn,
    RestoreResult,
    boundary_rows,
    expected_rows,
    format_lsn,
    history_rows,
    parse_lsn,
    restore,
    target_text,
)

MS = dt.timedelta(milliseconds=1)


# -------------------------------------------------------------------------- cases


@dataclasses.dataclass
class Case:
    name: str
    why: str
    target: object                    # datetime, Lsn, or LATEST
    recoverable: bool
    backup_id: str | None = None      # anchor cnpg-ops must name (when recoverable)
    timeline: int | None = None       # timeline recovery follows (when recoverable), see build_cases
    missing_wal: list[str] = dataclasses.field(default_factory=list)   # must be reported
    no_backup: bool = False           # no DONE backup ends before the target: backup_id null
    fallback_backup: str | None = None   # backup restored when not recoverable
    expect_pg: str = "reached"        # reached | fatal | early_stop
    expect_fatal: str | None = None   # substring of PostgreSQL's FATAL line
    unusable_backups: list[str] = dataclasses.field(default_factory=list)  # restored too: must not reach
    timeline_arg: int | None = None   # --timeline and recovery_target_timeline (None: latest, the default)
    wal_to: str | None = None         # `wal_to` cnpg-ops must report (when set)
    suggested_by: str | None = None   # the target cnpg-ops checks is the `exact:` entry of this
                                      # case's `nearest`; `target` is the facts' own (ground truth)

    @property
    def target_text(self) -> str:
        return target_text(self.target)

    @property
    def tool_args(self) -> list[str]:
        """`--to ...` (and `--timeline N`) as passed to `catalog check`."""
        args = ["--to", self.target_text]
        if self.timeline_arg is not None:
            args += ["--timeline", str(self.timeline_arg)]
        return args


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

    # Targets that are not instants, with recovery_target_timeline pinned.
    ts = facts["timeline_switch"]
    old = ts["parent_timeline"]
    partials = [p for p in ts["partial_segments"] if int(p[:8], 16) == old]
    if len(partials) != 1:
        raise SystemExit(f"harness error: expected one timeline-{old} .partial, found {partials}")
    if any(w["name"] == partials[0][:24] for w in facts["wal_objects"]):
        raise SystemExit(f"harness error: {partials[0][:24]} is archived complete as well as {partials[0]}")
    on_old = [b for b in facts["backups"] if b["status"] == "DONE" and b["timeline"] == old]
    anchor_old = max(on_old, key=lambda b: t(b["end_time"]))["id"]
    cases.append(Case(
        "old_timeline_partial",
        f"latest on timeline {old} (--timeline {old}): {anchor_old}, then timeline {old} to the end of "
        f"{partials[0]}, the last rows (last_tli1) included, nothing of timeline {ts['new_timeline']}",
        LATEST, True, anchor_old, old, timeline_arg=old, fallback_backup=anchor_old, wal_to=partials[0]))
    # The ground truth of the exact suggestion: the start of the last segment before the gap.
    size = facts["wal_segment_size"]
    before = segment_name(gap[:8], segment_number(gap, size) - 1, size)
    lsn = Lsn(format_lsn(segment_number(before, size) * size))
    if lsn.value <= parse_lsn(B["B4"]["end_xlog"]):
        raise SystemExit(f"harness error: {before} ({lsn}) is not after B4's end {B['B4']['end_xlog']}")
    tli = facts["deleted_segment"]["timeline"]
    cases.append(Case(
        "exact_suggestion",
        f"the exact LSN cnpg-ops suggests when latest stops at {gap}; ground truth: {lsn}, the start "
        f"of {before}, the last segment before the gap",
        lsn, True, anchor_for_lsn(facts, lsn, tli), tli, timeline_arg=tli,
        fallback_backup=anchor_for_lsn(facts, lsn, tli), suggested_by="latest_with_gap"))
    return cases


def segment_number(name: str, size: int) -> int:
    return int(name[8:16], 16) * (0x100000000 // size) + int(name[16:24], 16)


def segment_name(tli_hex: str, number: int, size: int) -> str:
    per = 0x100000000 // size
    return f"{tli_hex}{number // per:08X}{number % per:08X}"


def anchor_for_lsn(facts: dict, lsn: Lsn, timeline: int) -> str | None:
    """The anchor of an LSN target: the newest DONE backup in the timeline's history that
    ended at or before the LSN."""
    ts = facts["timeline_switch"]
    switch = parse_lsn(ts["switchpoint"])

    def in_history(b):
        if b["timeline"] == timeline:
            return True
        return timeline == ts["new_timeline"] and b["timeline"] == ts["parent_timeline"] and \
            parse_lsn(b["end_xlog"]) <= switch

    usable = [b for b in facts["backups"] if b["status"] == "DONE" and in_history(b)
              and parse_lsn(b["end_xlog"]) <= lsn.value]
    return max(usable, key=lambda b: parse_lsn(b["end_xlog"]))["id"] if usable else None


def exact_suggestion(run) -> tuple[tuple[Lsn, int] | None, str]:
    """The `exact:` entry of a `catalog check` JSON's `nearest` array: ((LSN, timeline), detail)."""
    if run is None or run.error or not isinstance(run.json, dict):
        return None, (run.error if run is not None and run.error else "no usable `catalog check --to latest` output")
    nearest = run.json.get("nearest")
    if not isinstance(nearest, list):
        return None, f"`nearest` is {type(nearest).__name__}, expected an array"
    exact = [n for n in nearest if isinstance(n, dict) and str(n.get("description", "")).startswith("exact:")]
    if not exact:
        return None, f"no `nearest` entry whose description starts with `exact:`: {nearest}"
    n = exact[0]
    if not (isinstance(n.get("target"), str) and LSN_RE.match(n["target"])):
        return None, f"the exact entry's target {n.get('target')!r} is not an LSN: {n}"
    if not isinstance(n.get("timeline"), int) or isinstance(n.get("timeline"), bool):
        return None, f"the exact entry has no numeric timeline: {n}"
    return (Lsn(n["target"]), n["timeline"]), f"{n['target']} on timeline {n['timeline']}: {n['description']}"


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
    elif isinstance(case.target, Lsn):
        if not LSN_RE.match(out["target"]) or parse_lsn(out["target"]) != case.target.value:
            problems.append(f"target {out['target']!r} is not the LSN {case.target_text}")
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
        if case.wal_to is not None and out.get("wal_to") != case.wal_to:
            problems.append(f"wal_to {out.get('wal_to')!r}, expected {case.wal_to!r}")
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


def partial_replay_problems(facts: dict, case: Case, r: RestoreResult) -> list[str]:
    """A restore pinned to the old timeline, no target: PostgreSQL must have restored the
    segment whose only archived object is the .partial, replayed it to its end (it leaves
    the old timeline where the promoted standby left it), read nothing of the new timeline,
    and kept the rows committed just before the failover (last_tli1)."""
    problems = []
    seg = case.wal_to[:24]
    ts = facts["timeline_switch"]
    if seg not in r.restored_files:
        problems.append(f"{seg} was never restored from the archive: {r.restored_files}")
    if r.history_switchpoint != ts["switchpoint"]:
        problems.append(f"left timeline {r.history_parent} at {r.history_switchpoint}, not at the end of "
                        f"{case.wal_to} ({ts['switchpoint']}, where timeline {ts['new_timeline']} forked)")
    other = [f for f in r.restored_files if len(f) == 24 and int(f[:8], 16) != case.timeline_arg]
    if other:
        problems.append(f"restored WAL of another timeline: {other}")
    last = next(g for g in facts["groups"] if g["label"] == "last_tli1")["row_ids"]
    if not set(last) <= set(r.rows or []):
        problems.append(f"rows of last_tli1 {last} missing")
    return problems


def lsn_restore_problems(facts: dict, r: RestoreResult, lsn: Lsn, timeline: int) -> list[str]:
    """A restore to recovery_target_lsn on a pinned timeline must promote without a FATAL,
    after PostgreSQL's own `recovery stopping after WAL location (LSN)`, with rows that are a
    prefix of the timeline's history (in WAL order) matching the LSN (expected_rows,
    boundary_rows), none of them committed in or after the deleted segment."""
    problems = []
    if r.outcome != "promoted":
        problems.append(f"outcome {r.outcome}")
    if r.fatal:
        problems.append(f"FATAL: {r.fatal}")
    if not (r.stop_message or "").startswith("recovery stopping after WAL location (LSN)"):
        problems.append(f"no `recovery stopping after WAL location (LSN)` in the log (last stop line: {r.stop_message})")
    if r.outcome != "promoted":
        return problems
    hist = [row["id"] for row in history_rows(facts, timeline)]
    present = set(r.rows or [])
    if present != set(hist[:len(present)]):
        problems.append(f"rows {sorted(present)} are not a prefix of timeline {timeline}'s history {hist}")
    gap_rows = set(facts["deleted_segment"]["rows"])
    first_gap = min(i for i, x in enumerate(hist) if x in gap_rows)
    late = sorted(present & set(hist[first_gap:]))
    if late:
        problems.append(f"rows committed in or after the deleted segment {facts['deleted_segment']['name']}: {late}")
    must, may = expected_rows(facts, lsn, timeline), boundary_rows(facts, lsn, timeline)
    if must - present:
        problems.append(f"rows committed before {lsn} missing: {sorted(must - present)}")
    if present - must - may:
        problems.append(f"rows committed after {lsn} present: {sorted(present - must - may)}")
    if r.history_parent != timeline:
        problems.append(f"left timeline {r.history_parent}, not {timeline}")
    return problems


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

    # 1. the verdicts. `asked` is what cnpg-ops was asked for each case: the case itself, or
    #    for a suggested target the case with cnpg-ops' own LSN, timeline and its anchor.
    verdicts: dict[str, ToolRun] = {}
    asked: dict[str, Case] = {}
    if have_tool:
        log("cnpg-ops catalog check: one run per target")
        for case in sorted(cases, key=lambda c: c.suggested_by is not None):  # suggestions after their source
            ask = case
            if case.suggested_by:
                source = verdicts.get(case.suggested_by)
                if source is None:  # --only without the case that suggests
                    source = run_tool(binary, ["catalog", "check", facts["dest"], "--to", LATEST, *common_args])
                suggestion, detail = exact_suggestion(source)
                results.check(f"verdict {case.name}: `--to latest` (not recoverable) suggests an exact LSN "
                              f"with its timeline in `nearest`",
                              suggestion is not None and source.json.get("recoverable") is False, detail)
                if suggestion is None:
                    continue
                lsn, tli = suggestion
                anchor = anchor_for_lsn(facts, lsn, tli)
                ask = dataclasses.replace(case, target=lsn, timeline=tli, timeline_arg=tli, backup_id=anchor,
                                          fallback_backup=anchor)
            run = run_tool(binary, ["catalog", "check", facts["dest"], *ask.tool_args, *common_args])
            verdicts[case.name] = run
            asked[case.name] = ask
            problems = check_verdict(ask, run)
            expect = (f"recoverable from {ask.backup_id} on timeline {ask.timeline}" if ask.recoverable
                      else "NOT recoverable" + (f", missing {ask.missing_wal}" if ask.missing_wal else ""))
            if ask.wal_to:
                expect += f", wal_to {ask.wal_to}"
            label = case.name if ask.timeline_arg is None else f"{case.name} ({' '.join(ask.tool_args)})"
            results.check(f"verdict {label}: {expect}", not problems,
                          "; ".join(problems) if problems else ask.target_text)
        log("cnpg-ops catalog show")
        check_show(facts, run_tool(binary, ["catalog", "show", facts["dest"], *common_args]), results)
    elif any(c.suggested_by for c in cases):
        log("no cnpg-ops: the exact suggestion is restored from the facts only (ground truth)")

    # 2. the restores; the backup is the one cnpg-ops names when it says recoverable.
    #    A restore is (backup, target, recovery_target_timeline or None).
    plan: dict[tuple, None] = {}
    targets: dict[str, object] = {}
    agree: dict[str, tuple | None] = {}   # the restore that checks cnpg-ops' verdict
    for case in cases:
        targets[case.target_text] = case.target
        plan[(expected_backup(case), case.target_text, case.timeline_arg)] = None  # ground truth
        ask = asked.get(case.name, None if case.suggested_by else case)
        if ask is None:  # nothing suggested: no verdict to check
            agree[case.name] = None
        else:
            tool_json = verdicts[case.name].json if case.name in verdicts else None
            if isinstance(tool_json, dict) and tool_json.get("recoverable") and isinstance(tool_json.get("backup_id"), str):
                backup = tool_json["backup_id"]
            else:
                backup = ask.backup_id if ask.recoverable else ask.fallback_backup
            targets[ask.target_text] = ask.target
            agree[case.name] = (backup, ask.target_text, ask.timeline_arg)
            plan[agree[case.name]] = None                                         # agreement (usually the same)
        for extra in case.unusable_backups:
            plan[(extra, case.target_text, case.timeline_arg)] = None
    log(f"{len(plan)} real restores, {jobs} at a time")
    started = time.monotonic()

    def do(key):
        backup, text, tli = key
        name = f"{backup}-{text.replace(':', '').replace('+', 'p').replace('/', '-')}"
        if tli is not None:
            name += f"-tli{tli}"
        return key, restore(settings, facts, backup, targets[text], name, None if tli is None else str(tli))

    with ThreadPoolExecutor(max_workers=jobs) as pool:
        done: dict[tuple, RestoreResult] = dict(pool.map(do, plan))
    log(f"restores took {time.monotonic() - started:.0f}s")

    # 3. compare
    for case in cases:
        exp = expected_rows(facts, case.target, case.timeline_arg)
        may = boundary_rows(facts, case.target, case.timeline_arg)
        truth = done[(expected_backup(case), case.target_text, case.timeline_arg)]
        res = done[agree[case.name]] if agree[case.name] else None
        ask = asked.get(case.name, case)
        res_exp = expected_rows(facts, ask.target, ask.timeline_arg)
        res_may = boundary_rows(facts, ask.target, ask.timeline_arg)
        pin = "" if case.timeline_arg is None else f", recovery_target_timeline {case.timeline_arg}"
        print(f"\n{case.name}: {case.why}\n  target {case.target_text}{pin}; restored {truth.backup_id}: "
              f"{truth.describe(exp, may)}")
        if res is not None and res is not truth:
            print(f"  restored {res.backup_id} to {res.target} (named by cnpg-ops): {res.describe(res_exp, res_may)}")
        entry = {"case": dataclasses.asdict(case) | {"target": case.target_text},
                 "restore": dataclasses.asdict(truth), "classification": truth.classify(exp, may)}
        # ground truth, from the facts alone
        truth_got = truth.classify(exp, may)
        ok = truth_got == case.expect_pg and (case.expect_fatal is None or case.expect_fatal in (truth.fatal or ""))
        want = case.expect_pg + (f" ({case.expect_fatal})" if case.expect_fatal else "")
        results.check(f"ground truth {case.name}: PostgreSQL from {truth.backup_id} -> {want}", ok,
                      truth.describe(exp, may))
        got = res.classify(res_exp, res_may) if res is not None else None
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
        if case.wal_to and case.wal_to.endswith(".partial") and truth_got == "reached":
            problems = partial_replay_problems(facts, case, truth)
            results.check(f"ground truth {case.name}: replayed timeline {case.timeline_arg} to the end of "
                          f"{case.wal_to} (the only object for {case.wal_to[:24]}), last_tli1 included",
                          not problems, "; ".join(problems) if problems else
                          f"restored {case.wal_to[:24]} from the archive, left timeline {truth.history_parent} at "
                          f"{truth.history_switchpoint} for timeline {truth.timeline}")
        if isinstance(case.target, Lsn):
            problems = lsn_restore_problems(facts, truth, case.target, case.timeline_arg)
            results.check(f"ground truth {case.name}: PostgreSQL stopped at {case.target_text} on timeline "
                          f"{case.timeline_arg} and promoted; rows a prefix of its history, none from the gap on",
                          not problems, "; ".join(problems) if problems else truth.describe(exp, may))
        for extra in case.unusable_backups:
            bad = done[(extra, case.target_text, case.timeline_arg)]
            results.check(f"ground truth {case.name}: the FAILED backup {extra} is unusable",
                          bad.classify(exp, may) != "reached", bad.describe(exp, may))
            entry.setdefault("unusable", []).append(dataclasses.asdict(bad))
        # agreement between cnpg-ops and PostgreSQL
        if res is not None and case.name in verdicts and isinstance(verdicts[case.name].json, dict):
            said = verdicts[case.name].json.get("recoverable")
            entry["cnpg_ops"] = verdicts[case.name].json
            entry["asked"] = ask.tool_args
            if res is not truth:
                entry["restore_named_by_cnpg_ops"] = dataclasses.asdict(res)
            ok = said == (got == "reached")
            detail = res.describe(res_exp, res_may)
            if said and isinstance(ask.target, Lsn):
                problems = lsn_restore_problems(facts, res, ask.target, ask.timeline_arg)
                ok = ok and not problems
                detail = "; ".join([*problems, detail]) if problems else detail
            pin = "" if ask.timeline_arg is None else f" ({' '.join(ask.tool_args)})"
            results.check(f"agreement {case.name}{pin}: cnpg-ops recoverable={said}, PostgreSQL {got}", ok, detail)
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
