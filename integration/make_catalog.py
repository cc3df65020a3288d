#!/usr/bin/env python3
"""Build a REAL barman-cloud catalog in the S3 server and record every fact about it.

One PostgreSQL 15 primary archives its WAL with barman-cloud-wal-archive into
s3://<bucket>/<prefix>/<server>/ exactly as a CloudNativePG instance does. The story, in
order (each "group" is a few rows, one transaction each, with commit times recorded from
PostgreSQL's own commit timestamps; groups are ~1 s apart so targets can fall between them):

  timeline 1, primary
    pre_b1                      WAL archived uncompressed
    B1  gzip tars               WAL --gzip from here; rows of during_b1 committed while
                                the backup runs
    after_b1
    before_b2                   WAL now --bzip2
    B2  bzip2 tars, split into data.tar.bz2 + data_0001.tar.bz2 + ... (--max-archive-size)
    after_b2, then the restore point cnpg-ops-after-b2 (pg_create_restore_point)
    before_f3                   WAL now --zstd
    F3  lz4 tars, FAILED after pg_backup_stop (the proxy refuses the completion of the
        last tar part), so backup.info has status=FAILED with end_time/end_wal filled in
    after_f3
    a streaming standby is cloned with pg_basebackup -R, last_tli1 is written on the
    primary and replicated, the primary is shut down, the standby is promoted: it archives
    the old timeline's .partial and 00000002.history (WAL --lz4 on this node)
  timeline 2, the promoted standby
    first_tli2, before_b4       WAL now --xz
    B4  snappy tars, taken on timeline 2
    after_b4, before_gap        WAL now --snappy
    in_gap                      alone in one segment, which is DELETED from the bucket
    after_gap, head             the last segment archived is the archive head

Everything is written to facts.json (see the end of this file for the layout).

Usage: make_catalog.py [--workdir DIR] [--prefix cluster] [--server-name pg-main]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from common import (
    UTC,
    IntegrationError,
    Postgres,
    backup_list,
    barman_tool,
    list_objects,
    load_env,
    log,
    parse_time,
    rfc3339,
    s3_client,
    wait_for,
    wal_archive_command,
    write_json,
)
from s3proxy import FaultProxy

RESTORE_POINT = "cnpg-ops-after-b2"  # named restore point created after after_b2
GROUP_ROWS = 3          # rows (transactions) per group
ROW_SPACING = 0.05      # seconds between the rows of a group
GROUP_GAP = 1.0         # seconds of silence after each group, so targets fit between groups

SEGMENT_RE = re.compile(r"^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})$")
WAL_SUFFIXES = {".gz": "gzip", ".bz2": "bzip2", ".snappy": "snappy", ".xz": "xz", ".zst": "zstd", ".lz4": "lz4"}
TAR_SUFFIXES = {".tar": "none", ".tar.gz": "gzip", ".tar.bz2": "bzip2", ".tar.snappy": "snappy", ".tar.lz4": "lz4"}


def split_wal_name(basename: str) -> tuple[str, str]:
    """'000000010000000000000003.gz' -> ('000000010000000000000003', 'gzip')."""
    for suffix, name in WAL_SUFFIXES.items():
        if basename.endswith(suffix):
            return basename[: -len(suffix)], name
    return basename, "none"


def tar_compression(basename: str) -> str | None:
    for suffix in sorted(TAR_SUFFIXES, key=len, reverse=True):
        if basename.endswith(suffix):
            return TAR_SUFFIXES[suffix]
    return None


class CatalogBuilder:
    def __init__(self, settings: dict, prefix: str, server_name: str):
        self.s = settings
        self.workdir: Path = settings["workdir"]
        self.venv: Path = settings["venv"]
        self.bucket = settings["bucket"]
        self.prefix = prefix.strip("/")
        self.server = server_name
        self.dest = f"s3://{self.bucket}/{self.prefix}"
        self.key_root = f"{self.prefix}/{self.server}/"
        self.endpoint = settings["endpoint_url"]
        self.s3 = s3_client(self.endpoint)
        host, port = self.endpoint.rsplit("//", 1)[1].split(":")
        self.proxy = FaultProxy(host, int(port))
        self.pg_root = self.workdir / "pg"
        self.instances: list[Postgres] = []
        self.rows: list[dict] = []
        self.restore_points: list[dict] = []
        self.groups: list[dict] = []
        self.backups: list[dict] = []
        self.wal_settings: list[dict] = []
        self.events: list[dict] = []
        self.facts: dict = {}
        self.children: list[subprocess.Popen] = []  # barman-cloud-backup runs, killed on exit

    # ------------------------------------------------------------------ helpers

    def event(self, what: str, **extra) -> None:
        self.events.append({"at": rfc3339(dt.datetime.now(UTC)), "what": what, **extra})
        log(what)

    def new_instance(self, name: str) -> Postgres:
        pg = Postgres(
            name=name,
            datadir=self.pg_root / name,
            sockdir=self.pg_root / "run",
            logfile=self.pg_root / "logs" / f"{name}.log",
            bindir=self.s["pg_bindir"],
            user=self.s["pg_user"],
        )
        self.instances.append(pg)
        # a re-run in the same WORKDIR starts from scratch
        if pg.pid() is not None:
            pg.stop("immediate")
        shutil.rmtree(pg.datadir, ignore_errors=True)
        pg.logfile.unlink(missing_ok=True)
        return pg

    def archive_command(self, flag: str) -> str:
        # Through the proxy, so that backups can be observed and failed on purpose.
        return wal_archive_command(self.venv, flag, self.proxy.url, self.dest, self.server)

    def set_wal_compression(self, pg: Postgres, flag: str) -> None:
        """Switch archive_command to another compression, live, as an operator would."""
        cmd = self.archive_command(flag)
        pg.query("ALTER SYSTEM SET archive_command = %s", (cmd,))
        pg.query("SELECT pg_reload_conf()")
        wait_for(lambda: pg.scalar("SHOW archive_command") == cmd, 10, "archive_command reload")
        time.sleep(0.3)  # the archiver process applies SIGHUP asynchronously
        seg = pg.scalar("SELECT pg_walfile_name(pg_current_wal_lsn())")
        self.wal_settings.append({"instance": pg.name, "flag": flag or "(none)", "from_segment": seg,
                                  "at": rfc3339(dt.datetime.now(UTC))})
        self.event(f"{pg.name}: archive_command now uses {flag or 'no compression'} (current segment {seg})")

    def insert_group(self, pg: Postgres, label: str, n: int = GROUP_ROWS, pause: bool = True) -> dict:
        """Commit n rows, one transaction each, and record PostgreSQL's commit timestamps."""
        ids = []
        conn = pg.connect()
        try:
            with conn.cursor() as cur:
                for i in range(n):
                    if i:
                        time.sleep(ROW_SPACING)
                    cur.execute("INSERT INTO events (grp) VALUES (%s) RETURNING id", (label,))
                    (row_id,) = cur.fetchone()
                    # autocommit: the INSERT above is its own committed transaction now
                    cur.execute(
                        "SELECT written_at, pg_xact_commit_timestamp(xmin), pg_current_wal_lsn()::text, "
                        "pg_walfile_name(pg_current_wal_lsn()), xmin::text::bigint FROM events WHERE id = %s",
                        (row_id,),
                    )
                    written_at, committed_at, lsn, walfile, xid = cur.fetchone()
                    self.rows.append({
                        "id": row_id,
                        "group": label,
                        "timeline": int(walfile[:8], 16),
                        "commit_time": rfc3339(committed_at),
                        "xid": xid,
                        "written_at": rfc3339(written_at),
                        "lsn_after_commit": lsn,
                        "segment_after_commit": walfile,
                    })
                    ids.append(row_id)
        finally:
            conn.close()
        mine = [r for r in self.rows if r["group"] == label]
        group = {
            "label": label,
            "instance": pg.name,
            "timeline": mine[0]["timeline"],
            "row_ids": ids,
            "first_commit": mine[0]["commit_time"],
            "last_commit": mine[-1]["commit_time"],
        }
        self.groups.append(group)
        self.event(f"{pg.name}: group {label}: rows {ids[0]}..{ids[-1]} committed on timeline {group['timeline']}")
        if pause:
            time.sleep(GROUP_GAP)
        return group

    def archive_status(self, pg: Postgres) -> dict:
        rows = pg.query("SELECT name FROM pg_ls_archive_statusdir()")
        return {name for (name,) in rows}

    def wait_archived(self, pg: Postgres, walfile: str, timeout: float = 90) -> None:
        """Wait until PostgreSQL has archived walfile (its .done status file exists)."""

        def done():
            status = self.archive_status(pg)
            if f"{walfile}.done" in status:
                return True
            failed = pg.query("SELECT failed_count, last_failed_wal FROM pg_stat_archiver")[0]
            if failed[0] and failed[1] == walfile and failed[0] > 3:
                raise IntegrationError(f"{pg.name}: archiving {walfile} keeps failing; see {pg.logfile}")
            return False

        wait_for(done, timeout, f"{pg.name} to archive {walfile}")

    def wait_archive_idle(self, pg: Postgres, timeout: float = 90) -> None:
        wait_for(lambda: not any(n.endswith(".ready") for n in self.archive_status(pg)), timeout,
                 f"{pg.name} to archive every ready WAL file")

    def switch_wal(self, pg: Postgres) -> str:
        """pg_switch_wal() and wait until the finished segment is in the bucket."""
        seg = pg.scalar("SELECT pg_walfile_name(pg_switch_wal())")
        self.wait_archived(pg, seg)
        self.event(f"{pg.name}: switched WAL, {seg} archived")
        return seg

    def take_backup(self, pg: Postgres, label: str, flags: list[str], during: str, fail_after_stop: bool = False) -> dict:
        """Run barman-cloud-backup against pg. While barman holds the backup open (its
        STARTED backup.info is parked in the proxy) commit the rows of group `during`."""
        name = "backup-" + dt.datetime.now(UTC).strftime("%Y%m%d%H%M%S")  # CNPG's naming
        self.proxy.arm_hold(fail_after_stop=fail_after_stop)
        cmd = [barman_tool(self.venv, "barman-cloud-backup"), *flags, "--immediate-checkpoint",
               "--name", name, "-h", pg.sockdir, "-p", pg.port, "-U", "postgres",
               "--endpoint-url", self.proxy.url, self.dest, self.server]
        self.event(f"{pg.name}: {label}: barman-cloud-backup {' '.join(flags)} --name {name}")
        proc = pg.popen(*cmd)
        self.children.append(proc)
        backup_id = None
        deadline = time.monotonic() + 120
        while backup_id is None:
            backup_id = self.proxy.wait_held(0.2)
            if backup_id is None and (proc.poll() is not None or time.monotonic() > deadline):
                out = proc.communicate()[0] if proc.poll() is not None else ""
                raise IntegrationError(f"{label}: barman-cloud-backup never uploaded its STARTED backup.info\n{out}")
        self.event(f"{pg.name}: {label}: backup {backup_id} started (pg_backup_start done)")
        try:
            self.insert_group(pg, during, pause=False)
        finally:
            self.proxy.release_hold()
        out, rc, killed = self.wait_backup(proc, backup_id, fail_after_stop)
        self.proxy.disarm()
        if fail_after_stop:
            if (rc == 0 and not killed) or not self.proxy.failures:
                raise IntegrationError(f"{label}: expected barman-cloud-backup to fail, rc={rc}\n{out}")
            self.event(f"{pg.name}: {label}: barman-cloud-backup failed as intended (rc={rc}); "
                       f"refused completion of {', '.join(self.proxy.failures)}")
        elif rc != 0:
            raise IntegrationError(f"{label}: barman-cloud-backup failed (rc={rc})\n{out}")

        listed = {b["backup_id"]: b for b in backup_list(self.venv, self.endpoint, self.dest, self.server)}
        if backup_id not in listed:
            raise IntegrationError(f"{label}: backup {backup_id} missing from barman-cloud-backup-list")
        info = listed[backup_id]
        objects = list_objects(self.s3, self.bucket, f"{self.key_root}base/{backup_id}/")
        files = sorted(o["Key"].rsplit("/", 1)[1] for o in objects)
        tars = [f for f in files if tar_compression(f)]
        record = {
            "label": label,
            "id": backup_id,
            "name": info.get("backup_name"),
            "status": info["status"],
            "begin_time": rfc3339(parse_time(info["begin_time_iso"])),
            "end_time": rfc3339(parse_time(info["end_time_iso"])) if info.get("end_time_iso") else None,
            "begin_wal": info["begin_wal"],
            "end_wal": info.get("end_wal"),
            "begin_xlog": info["begin_xlog"],
            "end_xlog": info.get("end_xlog"),
            "timeline": info["timeline"],
            "compression": tar_compression(tars[0]) if tars else None,
            "barman_flags": flags,
            "objects": files,
            "error": info.get("error"),
            "taken_on": pg.name,
            "rows_committed_during": [g for g in self.groups if g["label"] == during][0]["row_ids"],
            "barman_output_tail": out.strip().splitlines()[-3:],
            "barman_exit": "killed after it hung (backup.info already written)" if killed else rc,
        }
        self.backups.append(record)
        self.event(f"{label}: {backup_id} status={record['status']} begin_wal={record['begin_wal']} "
                   f"end_wal={record['end_wal']} end_time={record['end_time']} tars={tars}")
        return record

    def wait_backup(self, proc, backup_id: str, expect_failed: bool, timeout: float = 300):
        """Wait for barman-cloud-backup. When its upload workers fail, barman 3.19.1 writes
        the FAILED backup.info and then may hang for ever in CloudInterface.close() (the
        abort leaves the job queue full with no worker left to drain it). So once the
        FAILED backup.info is in the bucket, allow 5 s, then kill the process group."""
        key = f"{self.key_root}base/{backup_id}/backup.info"
        deadline = time.monotonic() + timeout
        failed_seen_at = None
        killed = False
        while proc.poll() is None:
            time.sleep(0.5)
            if expect_failed and failed_seen_at is None:
                try:
                    body = self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()
                    if b"status=FAILED" in body:
                        failed_seen_at = time.monotonic()
                except self.s3.exceptions.NoSuchKey:
                    pass
            now = time.monotonic()
            if (failed_seen_at and now - failed_seen_at > 5) or now > deadline:
                self.event(f"barman-cloud-backup (pid {proc.pid}) still running "
                           f"{'5 s after writing its FAILED backup.info' if failed_seen_at else 'at the timeout'}; "
                           "killing its process group")
                os.killpg(proc.pid, signal.SIGKILL)
                killed = True
                break
        out, _ = proc.communicate(timeout=60)
        if killed and not failed_seen_at:
            raise IntegrationError(f"barman-cloud-backup for {backup_id} timed out\n{out}")
        return out, proc.returncode, killed

    # -------------------------------------------------------------------- story

    def build(self) -> dict:
        self.proxy.start()
        self.reset_prefix()
        primary = self.new_instance("primary")
        primary.initdb()
        primary.append_conf(primary.base_settings() | {
            "wal_level": "replica",
            "max_wal_senders": 5,
            "wal_keep_size": "512MB",
            "hot_standby": True,
            "archive_mode": "on",
            "archive_command": self.archive_command(""),
            "archive_timeout": 0,          # segments switch only when the story says so
            "track_commit_timestamp": True,
            "autovacuum": False,           # no stray commits between the recorded ones
        })
        primary.start()
        self.event(f"primary started on port {primary.port}")
        self.check_empty_archive(primary)
        primary.query(
            "CREATE TABLE events (id bigserial PRIMARY KEY, grp text NOT NULL, "
            "written_at timestamptz NOT NULL DEFAULT clock_timestamp())"
        )
        self.wal_settings.append({"instance": "primary", "flag": "(none)",
                                  "from_segment": primary.scalar("SELECT pg_walfile_name(pg_current_wal_lsn())"),
                                  "at": rfc3339(dt.datetime.now(UTC))})

        # ---- timeline 1
        self.insert_group(primary, "pre_b1")
        self.switch_wal(primary)
        self.set_wal_compression(primary, "--gzip")
        self.take_backup(primary, "B1", ["--gzip"], during="during_b1")
        self.insert_group(primary, "after_b1")

        self.set_wal_compression(primary, "--bzip2")
        self.insert_group(primary, "before_b2")
        self.switch_wal(primary)
        self.take_backup(primary, "B2", ["--bzip2", "--max-archive-size", "1MB"], during="during_b2")
        self.insert_group(primary, "after_b2")
        # A named restore point between the groups (recovery_target_name targets).
        rp_lsn = primary.scalar("SELECT pg_create_restore_point(%s)::text", (RESTORE_POINT,))
        self.restore_points.append({"name": RESTORE_POINT, "lsn_after": rp_lsn,
                                    "after_group": "after_b2", "created_at": rfc3339(dt.datetime.now(UTC))})
        self.event(f"primary: restore point {RESTORE_POINT} at {rp_lsn}")

        self.set_wal_compression(primary, "--zstd")
        self.insert_group(primary, "before_f3")
        self.switch_wal(primary)
        self.take_backup(primary, "F3", ["--lz4", "--max-archive-size", "1MB"], during="during_f3",
                         fail_after_stop=True)
        self.insert_group(primary, "after_f3")

        # ---- failover: streaming standby, primary shut down, standby promoted
        standby = self.new_instance("standby")
        standby.prepare_dirs()
        standby.run(standby.bin("pg_basebackup"), "-D", standby.datadir, "-h", primary.sockdir,
                    "-p", primary.port, "-U", "postgres", "-R", "-X", "stream", "-c", "fast")
        standby.append_conf(standby.base_settings() | {
            "archive_mode": "on",  # a standby archives nothing until it is promoted
            "archive_command": self.archive_command("--lz4"),
            "hot_standby": True,
        })
        standby.start()
        wait_for(lambda: standby.scalar("SELECT status FROM pg_stat_wal_receiver") == "streaming", 60,
                 "the standby to stream")
        self.event(f"standby streaming from the primary (port {standby.port})")
        self.insert_group(primary, "last_tli1")
        lsn = primary.scalar("SELECT pg_current_wal_lsn()::text")
        wait_for(lambda: standby.scalar("SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", (lsn,)), 60,
                 "the standby to replay the last rows")
        self.wait_archive_idle(primary)
        primary.stop("fast")
        ckpt = self.latest_checkpoint(primary)
        self.event(f"primary shut down (shutdown checkpoint {ckpt})")
        wait_for(lambda: standby.scalar("SELECT pg_last_wal_replay_lsn() > %s::pg_lsn", (ckpt,)), 60,
                 "the standby to replay the primary's shutdown checkpoint")
        promote_started = dt.datetime.now(UTC)
        standby.run(standby.bin("pg_ctl"), "-D", standby.datadir, "-w", "-t", "60", "promote")
        wait_for(lambda: standby.scalar("SELECT NOT pg_is_in_recovery()"), 60, "promotion")
        promoted_at = dt.datetime.now(UTC)
        self.event("standby promoted")
        self.wait_archived(standby, "00000002.history")
        history = (standby.datadir / "pg_wal" / "00000002.history").read_text()
        self.wait_archive_idle(standby)
        parent, switchpoint, reason = history.strip().splitlines()[-1].split("\t")
        self.timeline_switch = {
            "parent_timeline": int(parent),
            "new_timeline": 2,
            "switchpoint": switchpoint,
            "reason": reason,
            "history_file": "00000002.history",
            "history_content": history,
            "partial_segments": [],  # filled in from the bucket listing by collect()
            "promote_requested_at": rfc3339(promote_started),
            "promoted_at": rfc3339(promoted_at),
            "old_primary_shutdown_checkpoint": ckpt,
        }

        # ---- timeline 2
        self.insert_group(standby, "first_tli2")
        self.insert_group(standby, "before_b4")
        self.switch_wal(standby)
        self.set_wal_compression(standby, "--xz")
        self.take_backup(standby, "B4", ["--snappy"], during="during_b4")
        self.insert_group(standby, "after_b4")
        self.insert_group(standby, "before_gap")
        self.switch_wal(standby)
        self.set_wal_compression(standby, "--snappy")
        self.insert_group(standby, "in_gap")
        gap_segment = self.switch_wal(standby)
        self.insert_group(standby, "after_gap")
        self.insert_group(standby, "head", pause=False)
        head_segment = self.switch_wal(standby)
        self.wait_archive_idle(standby)
        system_id = str(standby.scalar("SELECT system_identifier FROM pg_control_system()"))
        version = int(standby.scalar("SHOW server_version_num"))
        seg_size = int(standby.scalar("SELECT setting FROM pg_settings WHERE name = 'wal_segment_size'"))
        standby.stop("fast")
        self.event("standby (timeline 2 primary) shut down")

        # ---- the gap: delete one archived segment that later targets need
        in_gap_rows = [r for r in self.rows if r["group"] == "in_gap"]
        if any(r["segment_after_commit"] != gap_segment for r in in_gap_rows):
            raise IntegrationError(f"rows of in_gap are not all in {gap_segment}: {in_gap_rows}")
        gap_keys = [o["Key"] for o in list_objects(self.s3, self.bucket, f"{self.key_root}wals/{gap_segment[:16]}/")
                    if split_wal_name(o["Key"].rsplit("/", 1)[1])[0] == gap_segment]
        if len(gap_keys) != 1:
            raise IntegrationError(f"expected one object for {gap_segment}, found {gap_keys}")
        self.s3.delete_object(Bucket=self.bucket, Key=gap_keys[0])
        self.event(f"deleted {gap_keys[0]} from the bucket")

        return self.collect(gap_segment, gap_keys[0], head_segment, system_id, version, seg_size)

    def reset_prefix(self) -> None:
        """Start from an empty prefix (the bucket belongs to this test run)."""
        objs = list_objects(self.s3, self.bucket, f"{self.prefix}/")
        for i in range(0, len(objs), 500):
            self.s3.delete_objects(Bucket=self.bucket,
                                   Delete={"Objects": [{"Key": o["Key"]} for o in objs[i:i + 500]]})
        if objs:
            self.event(f"removed {len(objs)} objects left under {self.prefix}/ by an earlier run")

    def check_empty_archive(self, pg: Postgres) -> None:
        # What CNPG runs before a new cluster archives: the destination must hold no WAL.
        pg.run(barman_tool(self.venv, "barman-cloud-check-wal-archive"), "--endpoint-url", self.endpoint,
               self.dest, self.server)

    def latest_checkpoint(self, pg: Postgres) -> str:
        out = pg.run(pg.bin("pg_controldata"), pg.datadir).stdout
        return re.search(r"Latest checkpoint location:\s+(\S+)", out).group(1)

    # ------------------------------------------------------------------- facts

    def collect(self, gap_segment, gap_key, head_segment, system_id, version, seg_size) -> dict:
        objects = list_objects(self.s3, self.bucket, self.key_root)
        wal_objects = []
        for o in objects:
            rel = o["Key"][len(self.key_root):]
            if not rel.startswith("wals/"):
                continue
            name, compression = split_wal_name(rel.rsplit("/", 1)[1])
            if name.endswith(".history"):
                kind = "history"
            elif name.endswith(".partial"):
                kind = "partial"
            elif name.endswith(".backup"):
                kind = "backup_history"
            else:
                kind = "segment"
            wal_objects.append({
                "key": o["Key"], "name": name, "kind": kind, "compression": compression,
                "timeline": int(name[:8], 16), "size": o["Size"],
                "last_modified": rfc3339(o["LastModified"]),
            })
        segments = [w for w in wal_objects if w["kind"] == "segment"]
        top_tli = max(w["timeline"] for w in segments)
        head = max((w for w in segments if w["timeline"] == top_tli), key=lambda w: w["name"])
        if head["name"] < head_segment:
            raise IntegrationError(f"archive head {head['name']} is before the last switched segment {head_segment}")
        if head["name"] != head_segment:
            # PostgreSQL can still close and archive a segment after the last
            # switch (the shutdown of the promoted standby has been seen to):
            # the facts describe the archive as it is.
            self.event(f"the archive head moved past the last switch, to {head['name']}")
        last_row = self.rows[-1]
        self.timeline_switch["partial_segments"] = [w["name"] for w in wal_objects if w["kind"] == "partial"]
        # Backup history files with no barman backup behind them (pg_basebackup of the standby).
        barman_begins = {(b["begin_wal"], b["begin_xlog"]) for b in self.backups}
        foreign = []
        for w in wal_objects:
            if w["kind"] != "backup_history":
                continue
            seg, offset = w["name"][:24], int(w["name"][25:33], 16)
            if not any(bw == seg and int(bx.split("/")[1], 16) % seg_size == offset for bw, bx in barman_begins):
                foreign.append(w["name"])
        self.facts = {
            "format": 1,
            "generated_at": rfc3339(dt.datetime.now(UTC)),
            "s3_server": self.s["s3_server"],
            "endpoint_url": self.endpoint,
            "bucket": self.bucket,
            "prefix": self.prefix,
            "dest": self.dest,
            "server_name": self.server,
            "catalog_root": self.key_root,
            "system_identifier": system_id,
            "pg_version_num": version,
            "wal_segment_size": seg_size,
            "backups": self.backups,
            "rows": self.rows,
            "groups": self.groups,
            "restore_points": self.restore_points,
            "timeline_switch": self.timeline_switch,
            "deleted_segment": {
                "name": gap_segment,
                "key": gap_key,
                "timeline": int(gap_segment[:8], 16),
                "rows": [r["id"] for r in self.rows if r["group"] == "in_gap"],
                "where": "timeline 2, after the last backup (B4): every target after it, and "
                         "`latest`, needs it",
            },
            "archive_head": {
                "name": head["name"], "key": head["key"], "timeline": head["timeline"],
                "last_modified": head["last_modified"],
                "last_commit": last_row["commit_time"], "last_row_id": last_row["id"],
            },
            "backup_history_files_without_barman_backup": {
                "names": foreign,
                "why": "pg_basebackup -R run on the primary to clone the streaming standby",
            },
            "wal_compressions": sorted({w["compression"] for w in wal_objects}),
            "wal_settings": self.wal_settings,
            "wal_objects": wal_objects,
            "events": self.events,
        }
        return self.facts

    def close(self) -> None:
        for proc in self.children:
            if proc.poll() is None:
                log(f"killing leftover barman-cloud-backup process group {proc.pid}")
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        for pg in self.instances:
            try:
                pg.stop("immediate")
            except Exception as exc:  # keep stopping the others
                log(f"could not stop {pg.name}: {exc}")
        self.proxy.close()


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workdir", help="directory given to setup.sh (default: $INTEGRATION_WORKDIR)")
    ap.add_argument("--prefix", default="cluster", help="path inside the bucket (CNPG destinationPath)")
    ap.add_argument("--server-name", default="pg-main", help="barman serverName")
    ap.add_argument("--out", help="facts file (default: WORKDIR/facts.json)")
    args = ap.parse_args(argv)
    # SIGTERM (CI cancelling the job) unwinds like Ctrl-C, so `finally` blocks stop PostgreSQL.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    settings = load_env(args.workdir)
    out = Path(args.out) if args.out else settings["workdir"] / "facts.json"
    builder = CatalogBuilder(settings, args.prefix, args.server_name)
    started = time.monotonic()
    try:
        facts = builder.build()
    except Exception:
        for pg in builder.instances:
            tail = pg.log_text().splitlines()[-15:]
            if tail:
                print(f"--- last lines of {pg.logfile}", file=sys.stderr)
                print("\n".join(tail), file=sys.stderr)
        raise
    finally:
        builder.close()
    write_json(out, facts)
    log(f"catalog built in {time.monotonic() - started:.0f}s: {len(facts['backups'])} backups, "
        f"{len(facts['rows'])} rows, {len(facts['wal_objects'])} WAL objects; facts in {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
