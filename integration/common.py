"""Helpers shared by the integration scripts.

- the environment written by setup.sh (S3 endpoint, credentials, venv, PostgreSQL paths);
- PostgreSQL instances run as an unprivileged system user (we run as root);
- the barman-cloud command lines, built the way CloudNativePG builds them;
- time formatting: RFC 3339 for cnpg-ops, 'YYYY-MM-DD HH:MM:SS.ffffff+00' for PostgreSQL 15.

Standard library plus boto3/psycopg2, which the venv created by setup.sh provides.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

UTC = dt.timezone.utc
HERE = Path(__file__).resolve().parent
RUNUSER = shutil.which("runuser") or shutil.which("runuser", path="/usr/sbin:/sbin") or "/usr/sbin/runuser"


class IntegrationError(RuntimeError):
    """A step of the harness itself failed (not an assertion about cnpg-ops)."""


def log(msg: str) -> None:
    now = dt.datetime.now(UTC).strftime("%H:%M:%S")
    print(f"[{now}] {msg}", flush=True)


# ------------------------------------------------------------------ environment


def load_env(workdir: str | os.PathLike | None = None) -> dict:
    """Read WORKDIR/env.sh (written by setup.sh) into os.environ and return the settings.

    The values already in the environment win, so `source env.sh` and then running a
    script by hand behaves the same as run.sh.
    """
    workdir = workdir or os.environ.get("INTEGRATION_WORKDIR")
    if not workdir:
        raise IntegrationError("no workdir: pass --workdir or set INTEGRATION_WORKDIR")
    env_file = Path(workdir) / "env.sh"
    if not env_file.is_file():
        raise IntegrationError(f"{env_file} is missing: run integration/setup.sh up {workdir}")
    for line in env_file.read_text().splitlines():
        line = line.strip()
        if not line.startswith("export "):
            continue
        key, _, value = line[len("export "):].partition("=")
        os.environ.setdefault(key, value)
    os.environ["INTEGRATION_WORKDIR"] = str(Path(workdir).resolve())
    return {
        "workdir": Path(workdir).resolve(),
        "endpoint_url": os.environ["S3_ENDPOINT_URL"],
        "bucket": os.environ["S3_BUCKET"],
        "venv": Path(os.environ["CNPG_OPS_VENV"]),
        "pg_bindir": Path(os.environ.get("PG_BINDIR", "/usr/lib/postgresql/15/bin")),
        "pg_user": os.environ.get("PG_USER", "postgres"),
        "s3_server": os.environ.get("S3_SERVER", "?"),
    }


def s3_env() -> dict:
    """The environment variables the barman-cloud tools need, for child processes."""
    keys = [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_DEFAULT_REGION",
        "AWS_REGION",
        "AWS_EC2_METADATA_DISABLED",
        "AWS_REQUEST_CHECKSUM_CALCULATION",
        "AWS_RESPONSE_CHECKSUM_VALIDATION",
    ]
    out = {k: os.environ[k] for k in keys if k in os.environ}
    out["TZ"] = "UTC"
    out["PATH"] = "/usr/local/bin:/usr/bin:/bin"
    out["LANG"] = "C.UTF-8"
    return out


def s3_client(endpoint_url: str):
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 3}),
    )


def list_objects(client, bucket: str, prefix: str) -> list[dict]:
    out = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        out.extend(page.get("Contents", []))
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ------------------------------------------------------------------------- time


def parse_time(value: str) -> dt.datetime:
    """Parse the timestamps barman and PostgreSQL print ('2026-11-24 10:00:00.1+00:00',
    '...+00', '...Z'); naive values are taken as UTC."""
    v = value.strip().replace(" ", "T", 1)
    if v.endswith("Z"):
        v = v[:-1] + "+00:00"
    if re.search(r"[+-]\d{2}$", v):
        v += ":00"  # '+00' -> '+00:00'
    t = dt.datetime.fromisoformat(v)
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def rfc3339(t: dt.datetime) -> str:
    """The form passed to `cnpg-ops ... --to`: 2026-11-24T10:00:00.123456+00:00."""
    return t.astimezone(UTC).isoformat(timespec="microseconds")


def pg_time(t: dt.datetime) -> str:
    """The form PostgreSQL 15 accepts for recovery_target_time (it rejects 'T...Z')."""
    return t.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f") + "+00"


# ------------------------------------------------------------------- PostgreSQL


@dataclass
class Postgres:
    """One PostgreSQL 15 instance run as the unprivileged PG user, on 127.0.0.1."""

    name: str
    datadir: Path
    sockdir: Path
    logfile: Path
    bindir: Path
    user: str = "postgres"
    port: int = field(default_factory=free_port)

    # -- process control
    def run(self, *cmd, check=True, capture=True, env_extra=None, timeout=600):
        """Run a command as the PG user with the S3 environment."""
        env = s3_env()
        if env_extra:
            env.update(env_extra)
        full = [RUNUSER, "-u", self.user, "--", *map(str, cmd)]
        # runuser keeps the environment (minus HOME/USER/LOGNAME), so the credentials travel
        # in it rather than on a command line visible in ps.
        r = subprocess.run(full, capture_output=capture, text=True, timeout=timeout, env=env)
        if check and r.returncode != 0:
            raise IntegrationError(
                f"{self.name}: command failed ({r.returncode}): {shlex.join(map(str, cmd))}\n"
                f"{r.stdout or ''}{r.stderr or ''}"
            )
        return r

    def popen(self, *cmd, env_extra=None) -> subprocess.Popen:
        """Start a command as the PG user with the S3 environment, without waiting."""
        env = s3_env()
        if env_extra:
            env.update(env_extra)
        full = [RUNUSER, "-u", self.user, "--", *map(str, cmd)]
        # A session of its own, so the whole tree (runuser, the tool, its worker processes)
        # can be signalled by process group if it hangs.
        return subprocess.Popen(full, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                start_new_session=True, env=env)

    def bin(self, tool: str) -> str:
        return str(self.bindir / tool)

    def prepare_dirs(self) -> None:
        for d in (self.datadir.parent, self.sockdir, self.logfile.parent):
            d.mkdir(parents=True, exist_ok=True)
            shutil.chown(d, self.user, self.user)

    def initdb(self) -> None:
        self.prepare_dirs()
        self.run(self.bin("initdb"), "-D", self.datadir, "-U", "postgres", "--auth=trust",
                 "-E", "UTF8", "--locale=C", "--data-checksums")

    def append_conf(self, settings: dict, filename: str = "postgresql.auto.conf") -> None:
        """Append settings; the last occurrence of a parameter wins."""
        lines = [f"\n# added by the integration harness ({self.name})"]
        for k, v in settings.items():
            if isinstance(v, bool):
                v = "on" if v else "off"
            if isinstance(v, str):
                v = "'" + v.replace("'", "''") + "'"
            lines.append(f"{k} = {v}")
        path = self.datadir / filename
        with open(path, "a") as fh:
            fh.write("\n".join(lines) + "\n")
        shutil.chown(path, self.user, self.user)

    def base_settings(self) -> dict:
        return {
            "port": self.port,
            "listen_addresses": "127.0.0.1",
            "unix_socket_directories": str(self.sockdir),
            "TimeZone": "UTC",
            "log_timezone": "UTC",
            "logging_collector": False,
            "log_line_prefix": "%m [%p] ",
            "shared_buffers": "32MB",
            "max_connections": 20,
            "fsync": False,  # throw-away test instances; nothing here survives a crash
            "full_page_writes": True,
        }

    def start(self, wait: bool = True, timeout: int = 60) -> None:
        args = [self.bin("pg_ctl"), "-D", self.datadir, "-l", self.logfile]
        args += ["-w", "-t", str(timeout)] if wait else ["-W"]
        self.run(*args, "start")

    def stop(self, mode: str = "fast") -> None:
        if self.pid() is None:
            return
        r = self.run(self.bin("pg_ctl"), "-D", self.datadir, "-m", mode, "-w", "-t", "60", "stop", check=False)
        if r.returncode != 0 and self.pid() is not None:
            self.run(self.bin("pg_ctl"), "-D", self.datadir, "-m", "immediate", "-w", "stop", check=False)

    def pid(self) -> int | None:
        """The postmaster pid when it is running, else None."""
        try:
            pid = int((self.datadir / "postmaster.pid").read_text().split("\n", 1)[0])
        except (FileNotFoundError, ValueError, PermissionError):
            return None
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        return pid

    # -- SQL
    def connect(self, dbname: str = "postgres", timeout: int = 5):
        import psycopg2

        conn = psycopg2.connect(host=str(self.sockdir), port=self.port, user="postgres",
                                dbname=dbname, connect_timeout=timeout)
        conn.autocommit = True
        return conn

    def query(self, sql: str, params=None) -> list[tuple]:
        conn = self.connect()
        try:
            with conn.cursor() as cur:
                cur.execute(sql, params)
                return cur.fetchall() if cur.description else []
        finally:
            conn.close()

    def scalar(self, sql: str, params=None):
        rows = self.query(sql, params)
        return rows[0][0] if rows else None

    def log_text(self) -> str:
        try:
            return self.logfile.read_text(errors="replace")
        except FileNotFoundError:
            return ""


# ---------------------------------------------------------------- barman-cloud


def barman_tool(venv: Path, tool: str) -> str:
    return str(venv / "bin" / tool)


def wal_archive_command(venv: Path, flag: str, endpoint_url: str, dest: str, server: str) -> str:
    """archive_command as CNPG runs it (barman-cloud-wal-archive ... DEST SERVER %p)."""
    parts = [barman_tool(venv, "barman-cloud-wal-archive")]
    if flag:
        parts.append(flag)
    parts += ["--endpoint-url", endpoint_url, dest, server]
    return " ".join(shlex.quote(p) for p in parts) + " %p"


def wal_restore_command(venv: Path, endpoint_url: str, dest: str, server: str) -> str:
    """restore_command as CNPG runs it (no --no-partial, like CNPG)."""
    parts = [barman_tool(venv, "barman-cloud-wal-restore"), "--endpoint-url", endpoint_url, dest, server]
    return " ".join(shlex.quote(p) for p in parts) + " %f %p"


def backup_list(venv: Path, endpoint_url: str, dest: str, server: str) -> list[dict]:
    """`barman-cloud-backup-list --format json`: every backup, FAILED ones included."""
    env = dict(os.environ, **s3_env())
    r = subprocess.run(
        [barman_tool(venv, "barman-cloud-backup-list"), "--format", "json", "--endpoint-url",
         endpoint_url, dest, server],
        capture_output=True, text=True, env=env, timeout=120,
    )
    if r.returncode != 0:
        raise IntegrationError(f"barman-cloud-backup-list failed: {r.stderr}")
    return json.loads(r.stdout)["backups_list"]


def wait_for(predicate, timeout: float, what: str, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise IntegrationError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)


def read_json(path) -> dict:
    with open(path) as fh:
        return json.load(fh)


def write_json(path, data) -> None:
    tmp = Path(str(path) + ".tmp")
    with open(tmp, "w") as fh:
        json.dump(data, fh, indent=2, sort_keys=False)
        fh.write("\n")
    os.replace(tmp, path)


# ------------------------------------------------------------------ test results


class Results:
    """Counts checks. An expected failure (`xfail`) is a check that fails because of a
    known, written-down cnpg-ops bug: it is listed with its reason and counted on its own,
    neither passed nor failed, so the run stays honest about what does not work."""

    def __init__(self):
        self.passed = 0
        self.failed = 0
        self.skipped: list[str] = []
        self.failures: list[str] = []
        self.xfails: list[str] = []

    def check(self, name: str, ok: bool, detail: str = "") -> bool:
        if ok:
            self.passed += 1
            print(f"  PASS  {name}" + (f"  ({detail})" if detail else ""), flush=True)
        else:
            self.failed += 1
            self.failures.append(f"{name}: {detail}")
            print(f"  FAIL  {name}" + (f"\n        {detail}" if detail else ""), flush=True)
        return ok

    def xfail(self, name: str, bug: str, detail: str = "") -> None:
        """`bug` names the known bug (its description is printed once by the caller)."""
        self.xfails.append(f"{name}: known bug {bug}")
        print(f"  XFAIL {name}  (known bug {bug})" + (f"\n        {detail}" if detail else ""), flush=True)

    def skip(self, name: str, why: str) -> None:
        self.skipped.append(name)
        print(f"  SKIP  {name}  ({why})", flush=True)

    def summary(self, label: str, counts_file=None) -> int:
        """Print the failures and the `LABEL: N passed, M failed` line; write the counts
        for run.sh when counts_file is given. Returns the exit status."""
        print()
        if self.failures:
            print("failures:")
            for f in self.failures:
                print(f"  - {f}")
        if self.xfails:
            print(f"expected failures ({len(self.xfails)}, known cnpg-ops bugs; not counted as passed):")
            for f in self.xfails:
                print(f"  - {f}")
        if counts_file:
            write_json(counts_file, {"suite": label, "passed": self.passed, "failed": self.failed,
                                     "xfailed": len(self.xfails), "failures": self.failures,
                                     "xfails": self.xfails, "skipped": self.skipped})
        print(f"{label}: {self.passed} passed, {self.failed} failed")
        return 1 if self.failed else 0


# ------------------------------------------------------------------------ cnpg-ops


def cnpg_ops_binary() -> Path:
    """CNPG_OPS_BIN (relative paths from the repository root), else target/debug/cnpg-ops."""
    repo = HERE.parent
    binary = Path(os.environ.get("CNPG_OPS_BIN") or repo / "target/debug/cnpg-ops")
    return binary if binary.is_absolute() else repo / binary


# Variables that choose a store or credentials; scrubbed before each cnpg-ops run so that a
# check only sees what it sets itself (`--endpoint-url` also reads AWS_ENDPOINT_URL).
STORE_ENV_PREFIXES = ("AWS_", "GOOGLE_", "AZURE_", "STORAGE_EMULATOR_HOST", "CLOUDSDK_", "GCE_")


@dataclass
class CliRun:
    argv: list
    returncode: int | None
    stdout: str
    stderr: str
    seconds: float
    json: object = None
    error: str | None = None   # stdout is not JSON, or the binary could not run

    def brief(self, limit: int = 600) -> str:
        err = " ".join(self.stderr.split())
        if len(err) > limit:  # the start says what failed, the end why
            err = err[: limit // 2] + " ... " + err[-limit // 2:]
        return f"exit {self.returncode} after {self.seconds:.1f}s; stderr: {err or '(empty)'}"


def run_cli(binary, args: list, env: dict | None = None, timeout: float = 300) -> CliRun:
    """Run cnpg-ops with a clean store environment plus `env`."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(STORE_ENV_PREFIXES)}
    full_env.update(env or {})
    full_env.setdefault("NO_COLOR", "1")
    argv = [str(binary), *map(str, args)]
    started = time.monotonic()
    try:
        p = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, env=full_env)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return CliRun(argv, None, "", str(exc), time.monotonic() - started, error=f"could not run: {exc}")
    run = CliRun(argv, p.returncode, p.stdout, p.stderr, time.monotonic() - started)
    try:
        run.json = json.loads(p.stdout)
    except json.JSONDecodeError as exc:
        run.error = f"stdout is not JSON ({exc}); {run.brief()}"
    return run
