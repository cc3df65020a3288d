#!/usr/bin/env python3
"""`gs://` and Azure destinations, end to end, against local emulators.

providers.sh starts gcp-storage-emulator (GCS JSON API) and Azurite (Azure Blob). One
PostgreSQL 15 instance archives every WAL segment into BOTH with the real barman-cloud
tools, exactly as a CloudNativePG instance configured for that provider would:

  barman-cloud-wal-archive --cloud-provider google-cloud-storage gs://cnpg-gcs/cluster pg-prov %p
      (STORAGE_EMULATOR_HOST points the Google client at the emulator)
  barman-cloud-wal-archive --cloud-provider azure-blob-storage \\
      http://127.0.0.1:PORT/devstoreaccount1/cnpg-azure/cluster pg-prov %p
      (AZURE_STORAGE_CONNECTION_STRING with the emulator's BlobEndpoint)

and barman-cloud-backup takes every base backup once into each store. The story:

  seg  rows, pg_switch_wal
  B1   barman-cloud-backup into GCS, then into Azure
  seg  rows, pg_switch_wal (twice)
  B2   barman-cloud-backup into GCS, then into Azure
  seg  rows, pg_switch_wal  -> this segment is then DELETED from both stores (the gap)
  seg  rows, pg_switch_wal (twice; the last one is the archive head)

Then, for each provider, `cnpg-ops` must:
  - `catalog show -o json`: list exactly the backups barman-cloud-backup-list lists, all DONE,
    and report the deleted segment as the one gap;
  - `catalog check --to latest`: NOT recoverable (exit 1), the gap in missing_wal;
  - `catalog check --to <B1 end_time + 1 µs>`: recoverable from B1 (exit 0);
  - `catalog check --to <B1 end_time - 1 µs>`: NOT recoverable (exit 1), no backup;
  - give identical backups, timelines and gaps with `--list-strategy ranges`, `dirs` and
    `sequential`;
  - read the store the other documented way too (GCS: STORAGE_EMULATOR_HOST instead of
    --endpoint-url; Azure: AZURE_STORAGE_CONNECTION_STRING instead of the built-in
    development key).

A check that fails because of a known cnpg-ops bug (KNOWN_BUGS below: the exact request and
error are matched, nothing looser) is reported as XFAIL and not counted as passed. Once the
bug is fixed the check simply passes.

Usage: test_providers.py [--workdir DIR] [--label providers] [--counts FILE]
Needs setup.sh up WORKDIR (PostgreSQL, the venv) and providers.sh start WORKDIR.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from common import (
    UTC,
    CliRun,
    IntegrationError,
    Postgres,
    Results,
    barman_tool,
    cnpg_ops_binary,
    load_env,
    log,
    parse_time,
    rfc3339,
    run_cli,
    wait_for,
    write_json,
)

SERVER = "pg-prov"
PREFIX = "cluster"
US = dt.timedelta(microseconds=1)
# The emulator's well-known development account (public, documented by Microsoft).
AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


# ---------------------------------------------------------------------- providers


class Provider:
    name = ""
    cloud_provider = ""
    dest = ""

    def barman_env(self) -> dict:
        raise NotImplementedError

    def cli(self) -> tuple[list, dict]:
        """DEST and the arguments/environment of the primary way to reach the store."""
        raise NotImplementedError

    def cli_alternative(self) -> tuple[str, list, dict]:
        """The other documented way to reach the same store."""
        raise NotImplementedError

    def create_bucket(self) -> None:
        raise NotImplementedError

    def keys(self, prefix: str) -> dict[str, int]:
        raise NotImplementedError

    def read(self, key: str) -> bytes:
        raise NotImplementedError

    def delete(self, key: str) -> None:
        raise NotImplementedError

    @property
    def key_root(self) -> str:
        return f"{PREFIX}/{SERVER}/"


class Gcs(Provider):
    name = "gcs"
    cloud_provider = "google-cloud-storage"

    def __init__(self, url: str):
        self.url = url
        self.bucket = "cnpg-gcs"
        self.dest = f"gs://{self.bucket}/{PREFIX}"
        self._client = None

    def barman_env(self) -> dict:
        return {"STORAGE_EMULATOR_HOST": self.url, "GOOGLE_CLOUD_PROJECT": "integration"}

    def cli(self):
        return [self.dest, "--endpoint-url", self.url], {}

    def cli_alternative(self):
        host = self.url.split("://", 1)[1]
        return f"STORAGE_EMULATOR_HOST={host}", [self.dest], {"STORAGE_EMULATOR_HOST": host}

    @property
    def client(self):
        if self._client is None:
            os.environ.update(self.barman_env())  # the Google client reads it at construction
            from google.cloud import storage

            self._client = storage.Client(project="integration")
        return self._client

    def create_bucket(self):
        from google.api_core.exceptions import Conflict

        try:
            self.client.create_bucket(self.bucket)
        except Conflict:  # a re-run against the same emulator
            pass

    def keys(self, prefix):
        return {b.name: b.size for b in self.client.list_blobs(self.bucket, prefix=prefix)}

    def read(self, key):
        return self.client.bucket(self.bucket).blob(key).download_as_bytes()

    def delete(self, key):
        self.client.bucket(self.bucket).blob(key).delete()


class Azure(Provider):
    name = "azure"
    cloud_provider = "azure-blob-storage"

    def __init__(self, url: str, account: str):
        self.url = url
        self.account = account
        self.container = "cnpg-azure"
        # barman's emulator form: http://HOST:PORT/ACCOUNT/CONTAINER/PATH
        self.dest = f"{url}/{account}/{self.container}/{PREFIX}"
        self.connection_string = (f"DefaultEndpointsProtocol=http;AccountName={account};"
                                  f"AccountKey={AZURITE_KEY};BlobEndpoint={url}/{account};")
        self._client = None

    def barman_env(self):
        return {"AZURE_STORAGE_CONNECTION_STRING": self.connection_string}

    def cli(self):
        return [self.dest, "--cloud-provider", self.cloud_provider], {}

    def cli_alternative(self):
        return ("AZURE_STORAGE_CONNECTION_STRING", [self.dest, "--cloud-provider", self.cloud_provider],
                {"AZURE_STORAGE_CONNECTION_STRING": self.connection_string})

    @property
    def client(self):
        if self._client is None:
            from azure.storage.blob import BlobServiceClient

            self._client = BlobServiceClient.from_connection_string(self.connection_string) \
                .get_container_client(self.container)
        return self._client

    def create_bucket(self):
        from azure.core.exceptions import ResourceExistsError

        try:
            self.client.create_container()
        except ResourceExistsError:  # a re-run against the same emulator
            pass

    def keys(self, prefix):
        return {b.name: b.size for b in self.client.list_blobs(name_starts_with=prefix)}

    def read(self, key):
        return self.client.download_blob(key).readall()

    def delete(self, key):
        self.client.delete_blob(key)


# --------------------------------------------------------------------- known bugs


@dataclasses.dataclass
class KnownBug:
    id: str
    provider: str
    why: str
    signature: tuple[str, ...]   # every string must appear in stderr, and the exit code is 3

    def matches(self, provider: Provider, run: CliRun) -> bool:
        return (provider.name == self.provider and run.returncode == 3
                and all(s in run.stderr for s in self.signature))


# Fixed in 62f9a2a and dropped from this list: `gcs-xml-list` (GCS was listed through the XML
# API, GET /BUCKET?list-type=2, which the emulator answers 501) and `gcs-emulator-host-http`
# (STORAGE_EMULATOR_HOST gave an http:// URL the HTTP client was not allowed to use).
KNOWN_BUGS = [
    KnownBug(
        "gcs-xml-get", "gcs",
        "cnpg-ops reads GCS objects through object_store's XML API GET, which percent-encodes "
        "the bucket name (GET {endpoint}/cnpg%2Dgcs/cluster%2Fpg%2Dprov%2F...%2Fbackup%2Einfo); "
        "gcp-storage-emulator routes on the raw path, finds no route for the bucket `cnpg%2Dgcs` "
        "and answers 501 Not Implemented. The same object reads fine as "
        "GET /storage/v1/b/cnpg-gcs/o/...?alt=media (JSON API, like the listing) or with the "
        "bucket unencoded",
        ("reading gs://cnpg-gcs/", "Error performing GET", "/cnpg%2Dgcs/", "501 Not Implemented"),
    ),
]


def known_bug(provider: Provider, run: CliRun) -> KnownBug | None:
    return next((b for b in KNOWN_BUGS if b.matches(provider, run)), None)


def judge(results: Results, provider: Provider, name: str, run: CliRun, problems: list[str], detail: str = ""):
    name = f"{provider.name}: {name}"
    if problems:
        bug = known_bug(provider, run)
        if bug:
            results.xfail(name, bug.id, run.brief(400))
            return
    results.check(name, not problems, "; ".join(problems) if problems else detail)


# -------------------------------------------------------------------------- catalog


class CatalogBuilder:
    """One PostgreSQL instance, archiving into every provider, backed up into each."""

    def __init__(self, settings: dict, providers: list[Provider]):
        self.s = settings
        self.venv: Path = settings["venv"]
        self.providers = providers
        root = settings["workdir"] / "providers" / "pg"
        self.pg = Postgres(name="providers", datadir=root / "data", sockdir=root / "run",
                           logfile=root / "logs" / "providers.log", bindir=settings["pg_bindir"],
                           user=settings["pg_user"])
        self.env = {}
        for p in providers:
            self.env.update(p.barman_env())
        self.children: list[subprocess.Popen] = []

    def archive_command(self) -> str:
        tool = barman_tool(self.venv, "barman-cloud-wal-archive")
        return " && ".join(
            shlex.join([tool, "--cloud-provider", p.cloud_provider, "--gzip", p.dest, SERVER]) + " %p"
            for p in self.providers)

    def switch_wal(self) -> str:
        seg = self.pg.scalar("SELECT pg_walfile_name(pg_switch_wal())")

        def archived():
            if self.pg.scalar("SELECT last_archived_wal FROM pg_stat_archiver") == seg:
                return True
            failed = self.pg.query("SELECT failed_count, last_failed_wal FROM pg_stat_archiver")[0]
            if failed[0] > 3 and failed[1] == seg:
                raise IntegrationError(f"archiving {seg} keeps failing; see {self.pg.logfile}")
            return False

        wait_for(archived, 120, f"{seg} to be archived into {', '.join(p.name for p in self.providers)}")
        log(f"{seg} archived into {', '.join(p.name for p in self.providers)}")
        return seg

    def rows(self, label: str, n: int = 3) -> None:
        for _ in range(n):
            self.pg.query("INSERT INTO events (grp) VALUES (%s)", (label,))

    def backup(self, provider: Provider) -> None:
        cmd = [barman_tool(self.venv, "barman-cloud-backup"), "--cloud-provider", provider.cloud_provider,
               "--gzip", "--immediate-checkpoint", "-h", self.pg.sockdir, "-p", self.pg.port, "-U", "postgres",
               provider.dest, SERVER]
        started = time.monotonic()
        proc = self.pg.popen(*cmd, env_extra=self.env)
        self.children.append(proc)
        try:
            out, _ = proc.communicate(timeout=300)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = proc.communicate()
            raise IntegrationError(f"barman-cloud-backup into {provider.name} hung\n{out}")
        if proc.returncode != 0:
            raise IntegrationError(f"barman-cloud-backup into {provider.name} failed ({proc.returncode})\n{out}")
        log(f"barman-cloud-backup into {provider.name} done in {time.monotonic() - started:.1f}s")

    def backup_list(self, provider: Provider) -> list[dict]:
        import json

        r = self.pg.run(barman_tool(self.venv, "barman-cloud-backup-list"), "--cloud-provider",
                        provider.cloud_provider, "--format", "json", provider.dest, SERVER, env_extra=self.env)
        return json.loads(r.stdout)["backups_list"]

    def build(self) -> dict:
        for p in self.providers:
            p.create_bucket()
            for key in p.keys(p.key_root):  # a re-run starts from an empty server folder
                p.delete(key)
        if self.pg.pid() is not None:
            self.pg.stop("immediate")
        shutil.rmtree(self.pg.datadir, ignore_errors=True)
        self.pg.logfile.unlink(missing_ok=True)
        self.pg.initdb()
        self.pg.append_conf(self.pg.base_settings() | {
            "wal_level": "replica",
            "archive_mode": "on",
            "archive_command": self.archive_command(),
            "archive_timeout": 0,
            "autovacuum": False,
        })
        # The archiver inherits the postmaster's environment: that is where the emulator
        # settings of barman-cloud-wal-archive come from, as in a CNPG pod.
        self.pg.run(self.pg.bin("pg_ctl"), "-D", self.pg.datadir, "-l", self.pg.logfile, "-w", "-t", "60",
                    "start", env_extra=self.env)
        log(f"PostgreSQL on port {self.pg.port} archives into {', '.join(p.name for p in self.providers)}")
        for p in self.providers:
            self.pg.run(barman_tool(self.venv, "barman-cloud-check-wal-archive"), "--cloud-provider",
                        p.cloud_provider, p.dest, SERVER, env_extra=self.env)
        self.pg.query("CREATE TABLE events (id bigserial PRIMARY KEY, grp text NOT NULL, "
                      "at timestamptz NOT NULL DEFAULT clock_timestamp())")
        self.rows("pre_b1")
        self.switch_wal()
        for p in self.providers:
            self.backup(p)
        self.rows("after_b1")
        self.switch_wal()
        self.rows("before_b2")
        self.switch_wal()
        for p in self.providers:
            self.backup(p)
        self.rows("after_b2")
        self.switch_wal()
        self.rows("in_gap")
        gap = self.switch_wal()
        self.rows("after_gap")
        self.switch_wal()
        self.rows("head")
        head = self.switch_wal()
        self.pg.stop("fast")

        facts = {"server_name": SERVER, "gap": gap, "head": head, "providers": {}}
        for p in self.providers:
            listed = self.backup_list(p)
            backups = []
            for b in sorted(listed, key=lambda b: b["backup_id"]):
                info = p.read(f"{p.key_root}base/{b['backup_id']}/backup.info").decode()
                fields = dict(line.split("=", 1) for line in info.splitlines() if "=" in line)
                backups.append({"id": b["backup_id"], "status": b["status"],
                                "end_time": rfc3339(parse_time(fields["end_time"])),
                                "begin_wal": fields["begin_wal"], "end_wal": fields["end_wal"]})
            wal_prefix = f"{p.key_root}wals/{gap[:16]}/"
            gap_keys = [k for k in p.keys(wal_prefix) if k.rsplit("/", 1)[1].split(".")[0] == gap]
            if len(gap_keys) != 1:
                raise IntegrationError(f"{p.name}: expected one object for {gap}, found {gap_keys}")
            p.delete(gap_keys[0])
            log(f"{p.name}: deleted {gap_keys[0]}")
            facts["providers"][p.name] = {
                "dest": p.dest, "backups": backups, "deleted_key": gap_keys[0],
                "objects": sorted(p.keys(p.key_root)),
            }
        return facts

    def close(self) -> None:
        for proc in self.children:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        self.pg.stop("immediate")


# --------------------------------------------------------------------------- checks


def show_summary(doc: dict) -> dict:
    """What must not depend on the listing strategy or on how the store is reached."""
    return {k: doc.get(k) for k in ("objects", "backups", "timelines", "gaps", "recovery_window")}


def check_show_doc(doc, want_backups: list[dict], gap: str) -> list[str]:
    if not isinstance(doc, dict):
        return ["no JSON document"]
    problems = []
    got = {b.get("id"): b.get("status") for b in doc.get("backups") or []}
    want = {b["id"]: b["status"] for b in want_backups}
    if got != want:
        problems.append(f"backups {got}, expected {want} (barman-cloud-backup-list)")
    gaps = [(g.get("first_missing"), g.get("last_missing")) for g in doc.get("gaps") or []]
    if gaps != [(gap, gap)]:
        problems.append(f"gaps {gaps}, expected exactly [{gap}]")
    return problems


def check_provider(results: Results, binary: Path, p: Provider, facts: dict) -> None:
    f = facts["providers"][p.name]
    gap = facts["gap"]
    base_args, env = p.cli()
    common = ["--server-name", SERVER, "-o", "json"]
    backups = f["backups"]
    b1 = backups[0]

    # catalog show, default strategy
    run = run_cli(binary, ["catalog", "show", *base_args, *common], env)
    shown = run.json if isinstance(run.json, dict) else None
    problems = [run.error] if run.error else []
    if not problems and run.returncode not in (0, 1):
        problems.append(f"exit {run.returncode}")
    if shown is not None:
        problems += check_show_doc(shown, backups, gap)
    judge(results, p, "catalog show: the backups barman listed, all DONE, and the gap", run, problems,
          f"{len(backups)} backups, gap {gap}, {run.seconds:.1f}s")

    # catalog check
    def check(name, to, recoverable, backup_id=None, missing=None):
        r = run_cli(binary, ["catalog", "check", *base_args, "--to", to, *common], env)
        problems = [r.error] if r.error else []
        out = r.json if isinstance(r.json, dict) else {}
        if not problems:
            if out.get("recoverable") is not recoverable:
                problems.append(f"recoverable={out.get('recoverable')}, expected {recoverable}; "
                                f"reasons={out.get('reasons')}")
            if r.returncode != (0 if recoverable else 1):
                problems.append(f"exit {r.returncode}, expected {0 if recoverable else 1}")
            if out.get("backup_id") != backup_id and (recoverable or backup_id is None):
                problems.append(f"backup_id {out.get('backup_id')}, expected {backup_id}")
            if missing and missing not in (out.get("missing_wal") or []):
                problems.append(f"missing_wal {out.get('missing_wal')} lacks {missing}")
        judge(results, p, name, r, problems, to)

    check(f"catalog check --to latest: NOT recoverable, {gap} missing", "latest", False,
          backup_id=backups[-1]["id"], missing=gap)
    end = parse_time(b1["end_time"])
    check(f"catalog check 1 µs after B1 ends: recoverable from {b1['id']}", rfc3339(end + US), True, b1["id"])
    check("catalog check 1 µs before B1 ends: NOT recoverable, no backup", rfc3339(end - US), False, None)

    # the listing strategies agree
    for strategy in ("ranges", "dirs", "sequential"):
        r = run_cli(binary, ["catalog", "show", *base_args, "--list-strategy", strategy, *common], env)
        problems = [r.error] if r.error else []
        if not problems:
            problems += check_show_doc(r.json, backups, gap)
            if shown is not None and not problems and show_summary(r.json) != show_summary(shown):
                diff = [k for k, v in show_summary(r.json).items() if v != show_summary(shown)[k]]
                problems.append(f"differs from the default listing in {diff}")
        judge(results, p, f"catalog show --list-strategy {strategy}: same backups, timelines and gaps", r,
              problems, f"{r.seconds:.1f}s")

    # the other documented way in
    label, alt_args, alt_env = p.cli_alternative()
    r = run_cli(binary, ["catalog", "show", *alt_args, *common], alt_env)
    problems = [r.error] if r.error else []
    if not problems:
        problems += check_show_doc(r.json, backups, gap)
    judge(results, p, f"catalog show via {label}: same backups and gap", r, problems)


# ------------------------------------------------------------------------------ main


def load_provider_env(workdir: Path) -> None:
    env_file = workdir / "providers" / "env.sh"
    if not env_file.is_file():
        raise IntegrationError(f"{env_file} is missing: run integration/providers.sh up {workdir}")
    for line in env_file.read_text().splitlines():
        if line.startswith("export "):
            k, _, v = line[len("export "):].partition("=")
            os.environ.setdefault(k, v)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workdir")
    ap.add_argument("--label", default="integration", help="name on the summary line")
    ap.add_argument("--counts", help="also write the counts to this JSON file (run.sh sums them)")
    args = ap.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    settings = load_env(args.workdir)
    load_provider_env(settings["workdir"])
    providers = [Gcs(os.environ["GCS_EMULATOR_URL"]),
                 Azure(os.environ["AZURITE_BLOB_URL"], os.environ.get("AZURITE_ACCOUNT", "devstoreaccount1"))]
    results = Results()
    binary = cnpg_ops_binary()
    started = time.monotonic()
    builder = CatalogBuilder(settings, providers)
    try:
        facts = builder.build()
    except Exception:
        tail = builder.pg.log_text().splitlines()[-20:]
        if tail:
            print(f"--- last lines of {builder.pg.logfile}", file=sys.stderr)
            print("\n".join(tail), file=sys.stderr)
        raise
    finally:
        builder.close()
    facts["generated_at"] = rfc3339(dt.datetime.now(UTC))
    write_json(settings["workdir"] / "providers" / "facts.json", facts)
    log(f"catalogs written by barman-cloud in {time.monotonic() - started:.0f}s")

    print()
    # ground truth: barman wrote what the story says (independent of cnpg-ops)
    for p in providers:
        backups = facts["providers"][p.name]["backups"]
        results.check(f"{p.name}: barman-cloud-backup-list lists 2 DONE backups",
                      [b["status"] for b in backups] == ["DONE", "DONE"],
                      ", ".join(f"{b['id']} {b['status']}" for b in backups))
    have_tool = binary.is_file() and os.access(binary, os.X_OK)
    if results.check("cnpg-ops binary exists", have_tool, str(binary)):
        for p in providers:
            check_provider(results, binary, p, facts)
    seen = sorted({x.split(": known bug ")[-1] for x in results.xfails})
    for bug in KNOWN_BUGS:
        if bug.id in seen:
            print(f"\nknown bug {bug.id}: {bug.why}")
    log(f"providers: {time.monotonic() - started:.0f}s in all")
    return results.summary(args.label, args.counts)


if __name__ == "__main__":
    sys.exit(main())
