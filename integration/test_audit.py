#!/usr/bin/env python3
"""`cnpg-ops audit` against real catalogs in the S3 server, with real lifecycle rules.

A real PostgreSQL instance archives through barman-cloud-wal-archive into
s3://BUCKET/audit/src/src-pg; barman-cloud-backup takes a base backup; four WAL switches
follow, then a second backup and one more switch. That catalog is copied (server-side CopyObject) into one server folder per case and
each copy is broken the way the silent failures break catalogs:

  healthy-pg    untouched                                   audits clean (no error, no warning)
  gap-pg        the second WAL segment after the backup     wal-gap-in-window, naming it
                deleted
  nodata-pg     the backup's data tar deleted (what a       backup-unusable; barman-cloud-restore
                lifecycle rule on base/ does)               of that backup really fails
  corrupt-pg    backup.info overwritten with garbage        backup-unusable (unreadable backup.info)
  sysid-pg      a second, unrelated instance's real         systemid-multiple
                backup written into the same folder
  timeline-pg   a timeline-2 segment with no history file   timeline-unexpected
  nested-pg     destinationPath ends with the server name,  prefix-double-nested
                the catalog lives in nested-pg/nested-pg/
  ghost-pg      a folder no manifest names                  prefix-orphan
  lc-pg         under audit/lc/, which a lifecycle rule     lifecycle-deletes-anchor (rule audit-lc),
                set through the S3 API expires after 3      and only there; cnpg_ops_lifecycle_violations
                days; retention is 7 days                   is 1 for it and 0 elsewhere
  down-pg       endpoint nothing listens on                 catalog-unreadable (connection refused)
  denied-pg     a bucket the key may not read (Garage)      catalog-unreadable (access denied) and
                                                            bucket-config-unreadable
  missing-pg    a server folder that was never written      catalog-missing
  moto-pg       a copy in a second S3 server (moto, which   lifecycle-archives-needed (GLACIER after
                implements what Garage does not): object     2 days); the report shows the lock's mode
                lock with a 30-day GOVERNANCE default,       and period, and versioning enabled (or,
                a transition rule to GLACIER                 as moto 5.2.5 answers, unreadable with why)

One audit of the whole repository must report every case above at once (the unreadable
stores do not stop the others) and exit 1. Then, on healthy-pg alone: exit 0 and a
Prometheus exposition (stdout and --textfile) with the documented metrics; judged a few
hours later (--now) archiving has stalled, days later the backup is overdue, weeks later
retention is not enforced. With the lifecycle rule removed, lc-pg audits clean. A real
barman-cloud-restore of healthy-pg's backup succeeds where nodata-pg's fails.

Usage: test_audit.py [--workdir DIR] [--label audit] [--counts FILE]
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from common import (
    IntegrationError,
    Postgres,
    Results,
    barman_tool,
    cnpg_ops_binary,
    free_port,
    list_objects,
    load_env,
    log,
    rfc3339,
    run_cli,
    s3_client,
    s3_env,
    wal_archive_command,
    wait_for,
)

UTC = dt.timezone.utc
RETENTION = "7d"
SCHEDULE = "0 0 3 * * *"   # daily
S3_KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION", "AWS_REGION",
           "AWS_EC2_METADATA_DISABLED")

CLUSTER = """apiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata:
  name: {server}
  namespace: {svc}
spec:
  instances: 1
  imageName: ghcr.io/cloudnative-pg/postgresql:15.10-standard-bookworm
  storage:
    size: 1Gi
  plugins:
    - name: barman-cloud.cloudnative-pg.io
      isWALArchiver: true
      parameters:
        barmanObjectName: {svc}-store
        serverName: {server}
"""
STORE = """apiVersion: barmancloud.cnpg.io/v1
kind: ObjectStore
metadata:
  name: {svc}-store
  namespace: {svc}
spec:
  retentionPolicy: {retention}
  configuration:
    destinationPath: {dest}
    endpointURL: {endpoint}
    s3Credentials:
      accessKeyId:
        name: {svc}-s3
        key: ACCESS_KEY_ID
      secretAccessKey:
        name: {svc}-s3
        key: ACCESS_SECRET_KEY
"""
SCHEDULED = """apiVersion: postgresql.cnpg.io/v1
kind: ScheduledBackup
metadata:
  name: {svc}-daily
  namespace: {svc}
spec:
  schedule: "{schedule}"
  backupOwnerReference: self
  cluster:
    name: {server}
  method: plugin
  pluginConfiguration:
    name: barman-cloud.cloudnative-pg.io
"""
KUSTOMIZATION = """apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: {svc}
resources:
  - object-store.yaml
  - database.yaml
  - scheduled-backup.yaml
"""


class Suite:
    def __init__(self, settings: dict, binary: Path, results: Results):
        self.s = settings
        self.binary = binary
        self.r = results
        self.bucket = settings["bucket"]
        self.endpoint = settings["endpoint_url"]
        self.s3 = s3_client(self.endpoint)
        self.root = settings["workdir"] / "audit"
        shutil.rmtree(self.root, ignore_errors=True)
        self.root.mkdir(mode=0o755)
        os.chmod(self.root, 0o755)
        self.instances: list[Postgres] = []
        self.children: list[subprocess.Popen] = []
        self.backup_names: list[str] = []
        self.moto_url = ""
        self.backup_id = ""
        self.post_backup_wal: list[str] = []
        self.timings: dict[str, float] = {}

    # ------------------------------------------------------------ the real catalog

    def instance(self, name: str) -> Postgres:
        pg = Postgres(name=name, datadir=self.root / "pg" / name, sockdir=self.root / "pg" / "run",
                      logfile=self.root / "pg" / "logs" / f"{name}.log", bindir=self.s["pg_bindir"],
                      user=self.s["pg_user"])
        self.instances.append(pg)
        pg.initdb()
        return pg

    def barman_backup(self, pg: Postgres, dest: str, server: str) -> str:
        name = f"backup-{pg.name}-{len(self.backup_names)}"
        self.backup_names.append(name)
        pg.run(barman_tool(self.s["venv"], "barman-cloud-backup"), "--immediate-checkpoint", "--gzip",
               "--name", name, "-h", pg.sockdir, "-p", pg.port, "-U", "postgres",
               "--endpoint-url", self.endpoint, dest, server, timeout=300)
        infos = [o["Key"] for o in list_objects(self.s3, self.bucket, f"{dest.split('/', 3)[3]}/{server}/base/")
                 if o["Key"].endswith("/backup.info")]
        ids = sorted(k.split("/")[-2] for k in infos)
        if not ids:
            raise IntegrationError(f"barman-cloud-backup of {pg.name} wrote no backup.info")
        return ids[-1]  # backup ids are their start times: the newest is the one just taken

    def clear(self) -> None:
        """A re-run in the same WORKDIR starts from an empty audit/ prefix."""
        keys = [o["Key"] for o in list_objects(self.s3, self.bucket, "audit/")]
        for i in range(0, len(keys), 500):
            self.s3.delete_objects(Bucket=self.bucket,
                                   Delete={"Objects": [{"Key": k} for k in keys[i:i + 500]], "Quiet": True})

    def build_source(self) -> None:
        self.clear()
        dest = f"s3://{self.bucket}/audit/src"
        pg = self.instance("audit-a")
        pg.append_conf({**pg.base_settings(), "wal_level": "replica", "archive_mode": "on",
                        "archive_command": wal_archive_command(self.s["venv"], "--gzip", self.endpoint, dest, "src-pg"),
                        "archive_timeout": 0})
        pg.start()
        pg.query("CREATE TABLE t (id int, at timestamptz DEFAULT now())")
        pg.query("INSERT INTO t SELECT g FROM generate_series(1, 1000) g")
        self.backup_id = self.barman_backup(pg, dest, "src-pg")
        log(f"audit: source backup {self.backup_id}")
        for i in range(4):
            pg.query("INSERT INTO t SELECT g FROM generate_series(1, 100) g")
            seg = pg.scalar("SELECT pg_walfile_name(pg_current_wal_lsn())")
            pg.query("SELECT pg_switch_wal()")
            wait_for(lambda seg=seg: (pg.scalar("SELECT last_archived_wal FROM pg_stat_archiver") or "") >= seg,
                     60, f"segment {seg} archived")
            self.post_backup_wal.append(seg)
        # A second backup, so that weeks later the first one is what retention should have
        # deleted (the second is then the anchor the window keeps).
        self.second_backup = self.barman_backup(pg, dest, "src-pg")
        pg.query("INSERT INTO t SELECT g FROM generate_series(1, 100) g")
        seg = pg.scalar("SELECT pg_walfile_name(pg_current_wal_lsn())")
        pg.query("SELECT pg_switch_wal()")
        wait_for(lambda: (pg.scalar("SELECT last_archived_wal FROM pg_stat_archiver") or "") >= seg,
                 60, f"segment {seg} archived")
        log(f"audit: second backup {self.second_backup}")
        pg.stop()
        self.source = list_objects(self.s3, self.bucket, "audit/src/src-pg/")
        log(f"audit: source catalog of {len(self.source)} objects, WAL after the backup: {self.post_backup_wal}")

    def copy(self, dst_root: str, skip=lambda key: False) -> list[str]:
        """Copies the source catalog to `dst_root` (a key prefix ending in `/`)."""
        copied = []
        for o in self.source:
            rel = o["Key"][len("audit/src/src-pg/"):]
            if skip(rel):
                continue
            self.s3.copy_object(Bucket=self.bucket, Key=dst_root + rel,
                                CopySource={"Bucket": self.bucket, "Key": o["Key"]})
            copied.append(rel)
        return copied

    def wal_key(self, seg: str) -> str:
        for o in self.source:
            if f"/wals/{seg[:16]}/{seg}" in o["Key"]:
                return o["Key"][len("audit/src/src-pg/"):]
        raise IntegrationError(f"segment {seg} is not in the source catalog")

    def build_cases(self) -> None:
        cases = "audit/cases/"
        self.copy(cases + "healthy-pg/")
        self.gap_segment = self.post_backup_wal[1]
        gap_key = self.wal_key(self.gap_segment)
        self.copy(cases + "gap-pg/", skip=lambda k: k == gap_key)
        self.copy(cases + "nodata-pg/", skip=lambda k: k.startswith(f"base/{self.backup_id}/") and ".tar" in k)
        self.copy(cases + "corrupt-pg/")
        self.s3.put_object(Bucket=self.bucket, Key=f"{cases}corrupt-pg/base/{self.backup_id}/backup.info",
                           Body=b"\x00\xff this is not a backup.info\nstatus\n")
        self.copy(cases + "sysid-pg/")
        other = self.instance("audit-b")
        other.append_conf(other.base_settings())
        other.start()
        self.foreign_backup = self.barman_backup(other, f"s3://{self.bucket}/audit/cases", "sysid-pg")
        other.stop()
        self.copy(cases + "timeline-pg/")
        last = self.post_backup_wal[-1]
        tl2 = "00000002" + last[8:]
        self.s3.copy_object(Bucket=self.bucket, Key=f"{cases}timeline-pg/wals/{tl2[:16]}/{tl2}.gz",
                            CopySource={"Bucket": self.bucket, "Key": "audit/src/src-pg/" + self.wal_key(last)})
        self.copy(cases + "nested-pg/nested-pg/")
        ghost = self.wal_key(self.post_backup_wal[0])
        self.s3.copy_object(Bucket=self.bucket, Key=f"{cases}ghost-pg/{ghost}",
                            CopySource={"Bucket": self.bucket, "Key": "audit/src/src-pg/" + ghost})
        self.copy("audit/lc/lc-pg/")

    def start_moto(self) -> None:
        """A second S3 server with object lock, versioning and a transition rule, holding a
        copy of the source catalog under s3://locked/pg/moto-pg."""
        moto = self.s["venv"] / "bin" / "moto_server"
        if not moto.exists():
            raise IntegrationError(f"{moto} is missing: integration/setup.sh installs moto")
        port = free_port()
        log_file = open(self.root / "moto.log", "w")
        self.children.append(subprocess.Popen([str(moto), "-H", "127.0.0.1", "-p", str(port)],
                                              stdout=log_file, stderr=subprocess.STDOUT))
        self.moto_url = f"http://127.0.0.1:{port}"

        def up():
            try:
                urllib.request.urlopen(self.moto_url, timeout=1)
                return True
            except Exception:
                return False
        wait_for(up, 30, "moto to answer")
        import boto3
        from botocore.config import Config
        c = boto3.client("s3", endpoint_url=self.moto_url, region_name="us-east-1",
                         config=Config(s3={"addressing_style": "path"}))
        c.create_bucket(Bucket="locked", ObjectLockEnabledForBucket=True)
        c.put_object_lock_configuration(Bucket="locked", ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled", "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 30}}})
        c.put_bucket_lifecycle_configuration(Bucket="locked", LifecycleConfiguration={"Rules": [
            {"ID": "to-glacier", "Status": "Enabled", "Filter": {"Prefix": "pg/"},
             "Transitions": [{"Days": 2, "StorageClass": "GLACIER"}]}]})
        for o in self.source:
            body = self.s3.get_object(Bucket=self.bucket, Key=o["Key"])["Body"].read()
            md5 = base64.b64encode(hashlib.md5(body).digest()).decode()
            c.put_object(Bucket="locked", Key="pg/moto-pg/" + o["Key"][len("audit/src/src-pg/"):],
                         Body=body, ContentMD5=md5)

    # ------------------------------------------------------------ the repository

    def build_repo(self) -> Path:
        repo = self.root / "repo"
        cases_dest = f"s3://{self.bucket}/audit/cases"
        dead = f"http://127.0.0.1:{free_port()}"
        dbs = {
            "healthy": ("healthy-pg", cases_dest, self.endpoint),
            "gap": ("gap-pg", cases_dest, self.endpoint),
            "nodata": ("nodata-pg", cases_dest, self.endpoint),
            "corrupt": ("corrupt-pg", cases_dest, self.endpoint),
            "sysid": ("sysid-pg", cases_dest, self.endpoint),
            "timeline": ("timeline-pg", cases_dest, self.endpoint),
            "nested": ("nested-pg", f"{cases_dest}/nested-pg", self.endpoint),
            "lc": ("lc-pg", f"s3://{self.bucket}/audit/lc", self.endpoint),
            "down": ("down-pg", cases_dest, dead),
            "missing": ("missing-pg", cases_dest, self.endpoint),
        }
        if self.moto_url:
            dbs["moto"] = ("moto-pg", "s3://locked/pg", self.moto_url)
        if self.s.get("denied_bucket"):
            dbs["denied"] = ("denied-pg", f"s3://{self.s['denied_bucket']}/pg", self.endpoint)
        self.dbs = dbs
        (repo / ".cnpg-ops.toml").parent.mkdir(parents=True, exist_ok=True)
        (repo / ".cnpg-ops.toml").write_text('[defaults]\ndatabases = "clusters/{env}/databases/{svc}"\n'
                                             'identity = "s3-secret"\n')
        for svc, (server, dest, endpoint) in dbs.items():
            folder = repo / "clusters" / "prod" / "databases" / svc
            folder.mkdir(parents=True)
            v = {"svc": svc, "server": server, "dest": dest, "endpoint": endpoint,
                 "retention": RETENTION, "schedule": SCHEDULE}
            (folder / "database.yaml").write_text(CLUSTER.format(**v))
            (folder / "object-store.yaml").write_text(STORE.format(**v))
            (folder / "scheduled-backup.yaml").write_text(SCHEDULED.format(**v))
            (folder / "kustomization.yaml").write_text(KUSTOMIZATION.format(**v))
        return repo

    # ------------------------------------------------------------ running cnpg-ops

    def audit(self, name: str, *args, expect_json: bool = True):
        env = {k: os.environ[k] for k in S3_KEYS if k in os.environ}
        run = run_cli(self.binary, ["audit", "--repo", self.repo, *args], env=env, timeout=300)
        self.timings[name] = round(run.seconds, 2)
        if expect_json and run.json is None:
            self.r.check(f"{name}: JSON report", False, run.error or run.brief())
        return run

    @staticmethod
    def of(report: dict, svc: str) -> list[dict]:
        return [f for f in report["findings"] if f.get("svc") == svc and f["scope"] == "database"]

    def expect(self, report: dict, svc: str, fid: str, check=lambda f: True, what: str = "") -> dict | None:
        found = [f for f in self.of(report, svc) if f["id"] == fid]
        ok = any(check(f) for f in found)
        detail = what or (found[0]["message"][:160] if found else
                          f"got {[(f['id'], f['severity']) for f in self.of(report, svc)]}")
        self.r.check(f"{svc}: {fid}", ok, detail)
        return found[0] if found else None

    # ------------------------------------------------------------ the checks

    def whole_repo(self) -> None:
        print("\n-- one audit of every database")
        run = self.audit("whole repository", "-o", "json")
        if run.json is None:
            return
        report = run.json
        self.r.check("exit 1: error-level findings", run.returncode == 1, run.brief())
        self.r.check("every database reported", {d["svc"] for d in report["databases"]} == set(self.dbs),
                     str([d["svc"] for d in report["databases"]]))
        bad = [f for f in self.of(report, "healthy") if f["severity"] in ("error", "warning")]
        self.r.check("healthy: no error or warning", not bad, json.dumps(bad)[:400])
        m = next(d for d in report["databases"] if d["svc"] == "healthy")["metrics"]
        self.r.check("healthy: catalog read, fresh WAL and backup, no gap",
                     m["catalog_readable"] and m["wal_gaps"] == 0
                     and 0 <= m["newest_wal_age_seconds"] < 900 and 0 <= m["newest_backup_age_seconds"] < 900,
                     json.dumps(m))
        self.expect(report, "gap", "wal-gap-in-window",
                    lambda f: f["severity"] == "error" and f["evidence"]["first_missing"] == self.gap_segment,
                    f"the deleted segment {self.gap_segment}")
        self.expect(report, "nodata", "backup-unusable",
                    lambda f: f["subject"] == self.backup_id and f["evidence"]["catalog_finding"] == "backup-data-missing")
        self.expect(report, "corrupt", "backup-unusable",
                    lambda f: f["evidence"]["catalog_finding"] == "backup-info-unreadable")
        self.expect(report, "sysid", "systemid-multiple")
        self.expect(report, "timeline", "timeline-unexpected")
        self.expect(report, "nested", "prefix-double-nested",
                    lambda f: f["location"].endswith("/audit/cases/nested-pg/nested-pg"))
        orphans = [f for f in report["findings"] if f["id"] == "prefix-orphan"]
        self.r.check("ghost-pg is the only orphan",
                     [(f["location"], f["subject"]) for f in orphans] == [(f"s3://{self.bucket}/audit/cases", "ghost-pg")],
                     str([(f["location"], f["subject"]) for f in orphans]))
        self.expect(report, "lc", "lifecycle-deletes-anchor",
                    lambda f: f["severity"] == "error" and f["evidence"]["rule"] == "audit-lc"
                    and f["evidence"]["after_days"] == 3)
        others = [f for f in report["findings"] if f["id"].startswith("lifecycle-") and f.get("svc") not in ("lc", "moto")]
        self.r.check("the lifecycle rule reaches no other catalog", not others, json.dumps(others)[:300])
        self.expect(report, "down", "catalog-unreadable",
                    lambda f: "connection refused" in f["message"].lower() and f["evidence"]["exit_code"] == 3)
        self.expect(report, "missing", "catalog-missing", lambda f: f["severity"] == "error")
        if "denied" in self.dbs:
            self.expect(report, "denied", "catalog-unreadable",
                        lambda f: "denied" in f["message"].lower())
            denied = [f for f in report["findings"] if f["id"] == "bucket-config-unreadable"
                      and f["subject"] == self.s["denied_bucket"]]
            self.r.check("denied bucket: its configuration is reported unreadable", bool(denied),
                         str([(f["id"], f["subject"]) for f in report["findings"] if f["scope"] == "bucket"]))
        bucket = next((b for b in report["buckets"] if b["bucket"] == self.bucket), None)
        self.r.check("the bucket's lifecycle rules were read through the S3 API",
                     bucket is not None and {r["id"] for r in bucket["rules"]} == {"audit-lc", "audit-unrelated"},
                     json.dumps(bucket)[:300])
        unsupported = [f for f in report["findings"] if f["id"] == "bucket-config-unsupported"
                       and f["subject"] == self.bucket]
        if self.s["s3_server"] == "garage":
            self.r.check("Garage's missing object lock API is a note, not silence",
                         any(f["evidence"]["part"] == "object-lock" for f in unsupported),
                         str(unsupported)[:300])
        if self.moto_url:
            self.expect(report, "moto", "lifecycle-archives-needed",
                        lambda f: f["evidence"]["storage_class"] == "GLACIER" and f["evidence"]["rule"] == "to-glacier")
            locked = next((b for b in report["buckets"] if b["bucket"] == "locked"), {})
            self.r.check("moto: the object lock's mode and period read through the S3 API",
                         locked.get("lock") == {"kind": "s3-object-lock", "mode": "GOVERNANCE",
                                                "seconds": 30 * 86400, "locked": False},
                         json.dumps(locked)[:400])
            # moto 5.2.5 answers GetBucketVersioning with a <GetBucketVersioningResponse> root,
            # which the S3 API (and aws-sdk-s3) do not know: then the audit must say it could
            # not read versioning, naming why, rather than guess.
            unreadable = [u for u in locked.get("unreadable", []) if u["part"] == "versioning"]
            if locked.get("versioning") == "enabled":
                self.r.check("moto: versioning enabled, no noncurrent expiry: a note",
                             any(f["id"] == "bucket-versioning-unbounded" and f["subject"] == "locked"
                                 for f in report["findings"]), "")
            else:
                self.r.check("moto: versioning it cannot parse is reported, with the reason",
                             bool(unreadable) and "VersioningConfiguration" in unreadable[0]["detail"]
                             and any(f["id"] == "bucket-config-unreadable" and f["subject"] == "locked"
                                     and f["evidence"]["part"] == "versioning" for f in report["findings"]),
                             json.dumps(locked)[:400])
            m = next(d for d in report["databases"] if d["svc"] == "moto")["metrics"]
            self.r.check("moto: the copied catalog reads", m["catalog_readable"] and m["wal_gaps"] == 0, json.dumps(m))
        log(f"audit: whole repository in {run.seconds:.1f}s, {report['summary']}")

    def healthy_alone(self) -> None:
        print("\n-- healthy-pg alone")
        textfile = self.root / "metrics" / "cnpg_ops.prom"
        textfile.parent.mkdir()
        run = self.audit("healthy", "--svc", "healthy", "-o", "json", "--textfile", textfile)
        self.r.check("healthy: exit 0", run.returncode == 0, run.brief())
        prom = self.audit("healthy --prometheus", "--svc", "healthy", "--prometheus", expect_json=False)
        self.r.check("--prometheus: exit 0", prom.returncode == 0, prom.brief())
        samples = {}
        for line in prom.stdout.splitlines():
            if line and not line.startswith("#"):
                head, value = line.rsplit(" ", 1)
                samples[head] = float(value)
        labels = 'env="prod",svc="healthy",namespace="healthy",cluster="healthy-pg"'
        want = {f"cnpg_ops_audit_catalog_readable{{{labels}}}": 1, f"cnpg_ops_wal_gaps{{{labels}}}": 0,
                f"cnpg_ops_lifecycle_violations{{{labels}}}": 0,
                f'cnpg_ops_audit_findings{{{labels},severity="error"}}': 0}
        self.r.check("--prometheus: the per-database samples", all(samples.get(k) == v for k, v in want.items()),
                     str({k: samples.get(k) for k in want}))
        self.r.check("--prometheus: ages and first recoverable point present",
                     all(any(k.startswith(n + "{") for k in samples) for n in (
                         "cnpg_ops_newest_wal_age_seconds", "cnpg_ops_newest_backup_age_seconds",
                         "cnpg_ops_first_recoverable_timestamp_seconds"))
                     and "cnpg_ops_audit_last_run_timestamp_seconds" in samples, str(list(samples))[:400])
        text = textfile.read_text() if textfile.is_file() else ""
        self.r.check("--textfile: written, same metric names", bool(text) and
                     sorted(l.split()[2] for l in text.splitlines() if l.startswith("# TYPE")) ==
                     sorted(l.split()[2] for l in prom.stdout.splitlines() if l.startswith("# TYPE")),
                     str(textfile))
        leftovers = [p.name for p in textfile.parent.iterdir() if p.name != textfile.name]
        self.r.check("--textfile: no temporary file left", not leftovers, str(leftovers))

        now = dt.datetime.now(UTC)
        for label, delta, fid, absent in (
            ("3 hours later", dt.timedelta(hours=3), "wal-archiving-stalled", "backup-overdue"),
            ("3 days later", dt.timedelta(days=3), "backup-overdue", None),
            # The first backup is then older than the anchor (the second) the window keeps.
            ("20 days later", dt.timedelta(days=20), "retention-not-enforced", None),
        ):
            run = self.audit(f"healthy {label}", "--svc", "healthy", "-o", "json", "--now", rfc3339(now + delta))
            if run.json is None:
                continue
            ids = [f["id"] for f in run.json["findings"]]
            # Every case also has an error-level finding (archiving stalled at the least): exit 1.
            self.r.check(f"healthy {label}: {fid}", fid in ids and (absent is None or absent not in ids)
                         and run.returncode == 1, f"{ids}; {run.brief(200)}")

    def lifecycle_removed(self) -> None:
        print("\n-- lifecycle rule removed")
        self.s3.delete_bucket_lifecycle(Bucket=self.bucket)
        run = self.audit("lc without the rule", "--svc", "lc", "-o", "json")
        if run.json is None:
            return
        ids = [f["id"] for f in run.json["findings"] if f["severity"] in ("error", "warning")]
        self.r.check("lc without the rule: clean, exit 0", run.returncode == 0 and not ids, f"{ids}; {run.brief(200)}")

    def restores(self) -> None:
        print("\n-- real restores of the audited backups")
        tool = barman_tool(self.s["venv"], "barman-cloud-restore")
        env = dict(os.environ, **s3_env())
        import subprocess
        for server, should in (("healthy-pg", True), ("nodata-pg", False)):
            target = self.root / "restore" / server
            target.mkdir(parents=True)
            p = subprocess.run([tool, "--endpoint-url", self.endpoint, f"s3://{self.bucket}/audit/cases", server,
                                self.backup_id, str(target)], capture_output=True, text=True, env=env, timeout=300)
            restored = p.returncode == 0 and (target / "PG_VERSION").is_file()
            self.r.check(f"barman-cloud-restore of {server}'s backup {'succeeds' if should else 'fails'}",
                         restored == should, f"exit {p.returncode}: {p.stderr.strip()[-300:]}")

    def close(self) -> None:
        for proc in self.children:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
        for pg in self.instances:
            try:
                pg.stop("immediate")
            except Exception as exc:  # keep stopping the others
                log(f"could not stop {pg.name}: {exc}")
        try:
            self.s3.delete_bucket_lifecycle(Bucket=self.bucket)
        except Exception:
            pass


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workdir")
    ap.add_argument("--label", default="audit")
    ap.add_argument("--counts")
    args = ap.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    settings = load_env(args.workdir)
    settings["denied_bucket"] = os.environ.get("S3_DENIED_BUCKET", "")
    binary = cnpg_ops_binary()
    results = Results()
    started = time.monotonic()
    print()
    if not results.check("cnpg-ops binary exists", binary.is_file() and os.access(binary, os.X_OK), str(binary)):
        return results.summary(args.label, args.counts)
    suite = Suite(settings, binary, results)
    try:
        suite.build_source()
        suite.build_cases()
        suite.s3.put_bucket_lifecycle_configuration(Bucket=suite.bucket, LifecycleConfiguration={"Rules": [
            {"ID": "audit-lc", "Status": "Enabled", "Filter": {"Prefix": "audit/lc/"}, "Expiration": {"Days": 3}},
            {"ID": "audit-unrelated", "Status": "Enabled", "Filter": {"Prefix": "audit/unrelated/"},
             "Expiration": {"Days": 1}},
        ]})
        suite.start_moto()
        suite.repo = suite.build_repo()
        suite.whole_repo()
        suite.healthy_alone()
        suite.lifecycle_removed()
        suite.restores()
    except IntegrationError as exc:
        results.check("audit suite set-up", False, str(exc))
    finally:
        suite.close()
    print("\nseconds per run:")
    for name, secs in suite.timings.items():
        print(f"  {secs:6.2f}  {name}")
    log(f"audit: {time.monotonic() - started:.0f}s in all")
    return results.summary(args.label, args.counts)


if __name__ == "__main__":
    sys.exit(main())
