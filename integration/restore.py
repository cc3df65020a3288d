#!/usr/bin/env python3
"""Ground truth: a REAL point-in-time restore with barman-cloud and PostgreSQL 15.

restore() does what a CNPG recovery bootstrap does, by hand:
  1. `barman-cloud-restore DEST SERVER BACKUP_ID DATADIR` into a fresh data directory;
  2. recovery settings: restore_command = barman-cloud-wal-restore ... %f %p,
     recovery_target_time (PostgreSQL 15 form 'YYYY-MM-DD HH:MM:SS.ffffff+00') for an
     instant, recovery_target_lsn for an LSN (Lsn), neither for `latest`,
     recovery_target_action = promote, optional recovery_target_timeline, and
     recovery.signal;
  3. archive_mode = off, so a restored instance never writes into the live archive;
  4. start PostgreSQL on a free 127.0.0.1 port and watch what it does.

Outcomes (RestoreResult.outcome):
  promoted        recovery finished and the server promoted; `rows` holds the ids present.
                  Compared with the rows expected for the target this is one of
                  reached     exactly the rows committed at or before the target,
                  early_stop  some of those rows are missing (PostgreSQL stopped at a gap),
                  overshoot   rows committed after the target are present;
  fatal           PostgreSQL exited; `fatal` holds its FATAL line, e.g. "recovery ended
                  before configured recovery target was reached";
  restore_failed  barman-cloud-restore itself failed;
  timeout         nothing conclusive within the time limit.

It can be used on its own:
  restore.py --backup 20261124T101500 --target '2026-11-24T10:16:00.5+00:00'
  restore.py --backup 20261124T101500 --target latest --keep
  restore.py --backup 20261124T101500 --target 0/C000000 --timeline 2
  restore.py --backup 20261124T101500 --target latest --timeline 1
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import re
import shutil
import sys
import time
from pathlib import Path

from common import (
    Postgres,
    barman_tool,
    load_env,
    log,
    parse_time,
    pg_time,
    read_json,
    rfc3339,
    wal_restore_command,
)

LATEST = "latest"
LSN_RE = re.compile(r"^([0-9A-Fa-f]{1,8})/([0-9A-Fa-f]{1,8})$")


@dataclasses.dataclass(frozen=True)
class Lsn:
    """An LSN target (recovery_target_lsn), e.g. Lsn("0/C000000")."""

    text: str

    def __post_init__(self):
        if not LSN_RE.match(self.text):
            raise ValueError(f"not an LSN: {self.text!r}")

    @property
    def value(self) -> int:
        return parse_lsn(self.text)

    def __str__(self) -> str:
        return self.text


@dataclasses.dataclass(frozen=True)
class Xid:
    """A transaction target (recovery_target_xid)."""

    xid: int

    def __str__(self) -> str:
        return f"xid:{self.xid}"


@dataclasses.dataclass(frozen=True)
class Name:
    """A restore point target (recovery_target_name)."""

    name: str

    def __str__(self) -> str:
        return f"name:{self.name}"


def parse_lsn(text: str) -> int:
    """'0/C000150' -> 0xC000150."""
    m = LSN_RE.match(text.strip())
    if not m:
        raise ValueError(f"not an LSN: {text!r}")
    return (int(m.group(1), 16) << 32) | int(m.group(2), 16)


def format_lsn(value: int) -> str:
    return f"{value >> 32:X}/{value & 0xFFFFFFFF:X}"


def target_text(target) -> str:
    """RFC 3339 for an instant, the LSN for an Lsn, or 'latest'."""
    if target == LATEST:
        return LATEST
    if isinstance(target, Lsn):
        return target.text
    if isinstance(target, (Xid, Name)):
        return str(target)
    return rfc3339(target)


@dataclasses.dataclass
class RestoreResult:
    name: str
    backup_id: str
    target: str                      # RFC 3339, an LSN, or "latest"
    target_timeline: str | None
    outcome: str                     # promoted | fatal | restore_failed | timeout
    rows: list[int] | None = None    # ids present after promotion
    timeline: int | None = None      # timeline of the promoted server
    fatal: str | None = None
    stop_message: str | None = None  # "recovery stopping before commit of transaction ..."
    last_transaction: str | None = None
    # The history file of the new timeline names the timeline recovery followed and where
    # it left it: PostgreSQL's own record of the timeline the restore ended on.
    history_parent: int | None = None
    history_switchpoint: str | None = None
    history_reason: str | None = None
    restored_files: list[str] = dataclasses.field(default_factory=list)
    restore_output: str | None = None
    log_path: str | None = None
    seconds: float = 0.0

    def classify(self, expected_rows: set[int], may: set[int] = frozenset()) -> str:
        """reached / early_stop / overshoot / early_stop+overshoot, or the raw outcome.
        `may`: rows allowed but not required (see boundary_rows)."""
        if self.outcome != "promoted":
            return self.outcome
        present = set(self.rows or [])
        missing, extra = expected_rows - present, present - expected_rows - set(may)
        if not missing and not extra:
            return "reached"
        if missing and extra:
            return "early_stop+overshoot"
        return "early_stop" if missing else "overshoot"

    def describe(self, expected_rows: set[int] | None = None, may: set[int] = frozenset()) -> str:
        parts = [f"backup {self.backup_id}", f"outcome {self.outcome}"]
        if self.outcome == "promoted":
            present = set(self.rows or [])
            parts.append(f"rows {len(present)} (max id {max(present) if present else '-'}), "
                         f"left timeline {self.history_parent} at {self.history_switchpoint} "
                         f"for new timeline {self.timeline}")
            if expected_rows is not None:
                missing = sorted(expected_rows - present)
                extra = sorted(present - expected_rows - set(may))
                if missing:
                    parts.append(f"missing ids {compact(missing)}")
                if extra:
                    parts.append(f"unexpected ids {compact(extra)}")
        if self.fatal:
            parts.append(f"FATAL: {self.fatal}")
        if self.stop_message:
            parts.append(self.stop_message)
        if self.outcome == "restore_failed" and self.restore_output:
            parts.append(self.restore_output.strip().splitlines()[-1])
        return "; ".join(parts)


def compact(ids: list[int]) -> str:
    """[1,2,3,7] -> '1-3,7'"""
    out, start, prev = [], None, None
    for i in ids:
        if start is None:
            start = prev = i
        elif i == prev + 1:
            prev = i
        else:
            out.append(f"{start}-{prev}" if start != prev else str(start))
            start = prev = i
    if start is not None:
        out.append(f"{start}-{prev}" if start != prev else str(start))
    return ",".join(out)


def history_rows(facts: dict, timeline=None) -> list[dict]:
    """The rows in the history of `timeline` (a number, or None for every row), in WAL
    order: a child timeline's history is its parent's rows up to the switchpoint, then its
    own. LSNs grow along a history, so WAL order is LSN order."""
    rows = facts["rows"]
    if timeline is not None:
        ts = facts["timeline_switch"]
        tli = int(timeline)
        if tli == ts["parent_timeline"]:
            rows = [r for r in rows if r["timeline"] == tli]
        elif tli == ts["new_timeline"]:
            switch = parse_lsn(ts["switchpoint"])
            rows = [r for r in rows if r["timeline"] == tli or
                    (r["timeline"] == ts["parent_timeline"] and parse_lsn(r["lsn_after_commit"]) <= switch)]
        else:
            raise ValueError(f"timeline {timeline} is not in this catalog")
    return sorted(rows, key=lambda r: parse_lsn(r["lsn_after_commit"]))


def expected_rows(facts: dict, target, timeline=None) -> set[int]:
    """Row ids that a correct recovery to `target` must contain: every row committed at or
    before the target (recovery_target_inclusive defaults to on), or all rows for latest;
    only rows in the history of `timeline` when one is given (recovery_target_timeline).

    For an LSN: every row whose commit record ends at or before it (`lsn_after_commit`,
    the insert position read right after the commit, is at or past that end). PostgreSQL
    stops after the first record that starts at or past the LSN; when that record is the
    next row's commit, that row is present too: see boundary_rows."""
    rows = history_rows(facts, timeline)
    if target == LATEST:
        return {r["id"] for r in rows}
    if isinstance(target, Lsn):
        return {r["id"] for r in rows if parse_lsn(r["lsn_after_commit"]) <= target.value}
    return {r["id"] for r in rows if parse_time(r["commit_time"]) <= target}


def boundary_rows(facts: dict, target, timeline=None) -> set[int]:
    """Rows a correct recovery to `target` may contain without having to: for an LSN, the
    first row past it in WAL order, unless the row before it already ends at or past the
    LSN (then every record of that row starts past the LSN and recovery stops before its
    commit). Empty for instants and latest, whose rows are exact."""
    if not isinstance(target, Lsn):
        return set()
    rows = history_rows(facts, timeline)
    for i, r in enumerate(rows):
        if parse_lsn(r["lsn_after_commit"]) > target.value:
            if i == 0 or parse_lsn(rows[i - 1]["lsn_after_commit"]) < target.value:
                return {r["id"]}
            return set()
    return set()


RESTORED_RE = re.compile(r'restored log file "([^"]+)" from archive')
FATAL_RE = re.compile(r"(?:FATAL|PANIC):\s+(.*)")
STOP_RE = re.compile(r"LOG:\s+(recovery stopping [^\n]*)")
LASTTX_RE = re.compile(r"LOG:\s+last completed transaction was at log time ([^\n]*)")
# FATALs sent to our own connection attempts while the server is still recovering.
CONNECTION_NOISE = (
    "the database system is starting up",
    "the database system is not yet accepting connections",
    "the database system is not accepting connections",
    "the database system is in recovery mode",
    "terminating connection due to",
)
SELECTED_TLI_RE = re.compile(r"selected new timeline ID: (\d+)")


def restore(
    settings: dict,
    facts: dict,
    backup_id: str,
    target,
    name: str,
    target_timeline: str | None = None,
    timeout: float = 240,
    keep: bool = False,
) -> RestoreResult:
    """Restore backup_id into WORKDIR/restores/<name> and recover to target (a datetime, an
    Lsn, an Xid, a Name, or LATEST). The instance is stopped before returning; its log file
    is kept."""
    started = time.monotonic()
    root = settings["workdir"] / "restores"
    pg = Postgres(
        name=f"restore-{name}",
        datadir=root / name,
        sockdir=settings["workdir"] / "pg" / "run",
        logfile=root / "logs" / f"{name}.log",
        bindir=settings["pg_bindir"],
        user=settings["pg_user"],
    )
    if pg.pid() is not None:
        pg.stop("immediate")
    shutil.rmtree(pg.datadir, ignore_errors=True)
    pg.logfile.unlink(missing_ok=True)
    pg.prepare_dirs()
    result = RestoreResult(
        name=name,
        backup_id=backup_id,
        target=target_text(target),
        target_timeline=target_timeline,
        outcome="timeout",
        log_path=str(pg.logfile),
    )
    endpoint, dest, server = facts["endpoint_url"], facts["dest"], facts["server_name"]
    venv = settings["venv"]

    r = pg.run(barman_tool(venv, "barman-cloud-restore"), "--endpoint-url", endpoint, dest, server,
               backup_id, pg.datadir, check=False, timeout=600)
    result.restore_output = (r.stdout or "") + (r.stderr or "")
    if r.returncode != 0:
        result.outcome = "restore_failed"
        if not keep:
            shutil.rmtree(pg.datadir, ignore_errors=True)
        result.seconds = time.monotonic() - started
        return result
    pg.datadir.chmod(0o700)

    recovery = pg.base_settings() | {
        "archive_mode": "off",           # never write into the live archive
        "archive_command": "",
        "primary_conninfo": "",
        "hot_standby": True,
        "restore_command": wal_restore_command(venv, endpoint, dest, server),
        "recovery_target_action": "promote",
        "log_min_messages": "info",
    }
    if isinstance(target, Lsn):
        recovery["recovery_target_lsn"] = target.text
    elif isinstance(target, Xid):
        recovery["recovery_target_xid"] = str(target.xid)
    elif isinstance(target, Name):
        recovery["recovery_target_name"] = target.name
    elif target != LATEST:
        recovery["recovery_target_time"] = pg_time(target)
    if target_timeline:
        recovery["recovery_target_timeline"] = target_timeline
    pg.append_conf(recovery)
    signal = pg.datadir / "recovery.signal"
    signal.touch()
    shutil.chown(signal, pg.user, pg.user)
    (pg.datadir / "standby.signal").unlink(missing_ok=True)

    try:
        pg.start(wait=False)
        result.outcome = watch(pg, timeout)
        if result.outcome == "promoted":
            result.rows = [row[0] for row in pg.query("SELECT id FROM events ORDER BY id")]
            result.timeline = int(pg.scalar("SELECT pg_walfile_name(pg_current_wal_lsn())")[:8], 16)
            history = pg.datadir / "pg_wal" / f"{result.timeline:08X}.history"
            if history.is_file():
                lines = [ln for ln in history.read_text().splitlines() if ln.strip() and not ln.startswith("#")]
                parent, switchpoint, reason = lines[-1].split("\t", 2)
                result.history_parent = int(parent)
                result.history_switchpoint = switchpoint
                result.history_reason = reason
    finally:
        pg.stop("immediate")
    text = pg.log_text()
    result.restored_files = RESTORED_RE.findall(text)
    fatals = [m for m in FATAL_RE.findall(text) if not any(noise in m for noise in CONNECTION_NOISE)]
    result.fatal = fatals[-1] if fatals else None
    if result.outcome == "fatal" and not result.fatal:
        # e.g. postgres refusing to start at all: "could not find the database system ..."
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
        result.fatal = " ".join(lines[-2:]) if lines else "server exited without a log line"
    stops = STOP_RE.findall(text)
    result.stop_message = stops[-1] if stops else None
    last = LASTTX_RE.findall(text)
    result.last_transaction = last[-1] if last else None
    if result.outcome == "promoted" and result.timeline is None:
        m = SELECTED_TLI_RE.findall(text)
        result.timeline = int(m[-1]) if m else None
    if not keep:
        shutil.rmtree(pg.datadir, ignore_errors=True)
    result.seconds = round(time.monotonic() - started, 1)
    return result


def watch(pg: Postgres, timeout: float) -> str:
    """Wait until the recovering server promotes or dies."""
    import psycopg2

    deadline = time.monotonic() + timeout
    seen_pid = False
    while time.monotonic() < deadline:
        time.sleep(0.25)
        pid = pg.pid()
        if pid is None:
            # pg_ctl -W returns before the postmaster writes its pid file: give it a moment.
            if seen_pid or "FATAL" in pg.log_text() or time.monotonic() > deadline - timeout + 15:
                return "fatal"
            continue
        seen_pid = True
        try:
            if pg.scalar("SELECT NOT pg_is_in_recovery()"):
                return "promoted"
        except psycopg2.Error:
            pass  # still starting up or not consistent yet
    return "timeout"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workdir")
    ap.add_argument("--facts", help="facts.json (default: WORKDIR/facts.json)")
    ap.add_argument("--backup", required=True, help="backup id to restore")
    ap.add_argument("--target", default=LATEST, help="RFC 3339 time, an LSN (0/C000000), or 'latest' (no target)")
    ap.add_argument("--timeline", help="recovery_target_timeline (default: PostgreSQL's, i.e. latest)")
    ap.add_argument("--name", default="manual")
    ap.add_argument("--keep", action="store_true", help="keep the restored data directory")
    args = ap.parse_args(argv)
    settings = load_env(args.workdir)
    facts = read_json(args.facts or settings["workdir"] / "facts.json")
    if args.target == LATEST:
        target = LATEST
    elif LSN_RE.match(args.target):
        target = Lsn(args.target)
    else:
        target = parse_time(args.target)
    log(f"restoring {args.backup} to {args.target}")
    res = restore(settings, facts, args.backup, target, args.name, args.timeline, keep=args.keep)
    tli = int(args.timeline) if args.timeline and args.timeline.isdigit() else None
    exp, may = expected_rows(facts, target, tli), boundary_rows(facts, target, tli)
    print(json.dumps(dataclasses.asdict(res) | {"classification": res.classify(exp, may)}, indent=2))
    log(res.describe(exp, may))
    return 0


if __name__ == "__main__":
    sys.exit(main())
