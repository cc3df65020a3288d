#!/usr/bin/env python3
"""The runbooks `cnpg-ops pitr` and `cnpg-ops clone` against the real catalog, proven by real
restores.

The catalog is the one make_catalog.py built in the S3 server (facts.json); nothing new is
archived. A temporary git repository is made from tests/fixtures/repos/selfhosted (K3s +
MinIO: S3 with endpointURL and access-key Secrets): its prod/shop ObjectStore points at the
harness's destinationPath (s3://BUCKET/PREFIX) and endpoint (http://127.0.0.1:PORT, no CA
bundle for plain HTTP), the Cluster's plugin serverName is the harness's server and its
image is the PostgreSQL major that wrote the catalog; `.cnpg-ops.toml` gets an
`[env.staging]` section (endpoint_url, backup_destination s3://BUCKET/staging). The
repository is committed on `main`. Every cnpg-ops run gets the store credentials as AWS_*
variables (no AWS_ENDPOINT_URL: the endpoint must come from the manifests), a fixed git
identity, and CNPG_OPS_STATE_DIR in a temporary directory.

  (1) `pitr --env prod --svc shop --to T -o json`, T on timeline 2 after the failover, given
      with a +02:00 offset; the newest backup ending before T is the FAILED one, so
      CloudNativePG's own choice is wrong. Exit 0; the JSON events end in `succeeded`;
      the branch holds the recovery Cluster (kustomization entry included) and nothing in
      the checkout changed. The committed Cluster (read with `git show BRANCH:FILE`) names
      T as targetTime, the source serverName, its own write serverName (the one
      check-write-prefix proved empty, and empty in a listing of our own), the image major
      of the catalog, and pins backupID to the anchor of `prove-target` whenever
      CloudNativePG would pick another backup. `lint` on the branch has no error. Then the
      real restore: the backup the manifest names (backupID, else the anchor of the
      events), from the catalog its externalClusters entry resolves to (ObjectStore
      destinationPath + endpointURL + serverName), to its exact targetTime (and targetTLI
      when written): PostgreSQL promotes with exactly the rows committed at or before T, on
      the timeline `prove-target` named.
  (2) A target behind the deleted WAL segment: exit 1, no new ref, the working tree and
      checkout byte-identical; stderr names the missing segment and the nearest recoverable
      targets. The `exact:` LSN it suggests, fed back to pitr with its timeline, is
      committed (targetLSN, targetTLI) and proven by a real restore (recovery_target_lsn:
      stops there, promotes, rows a prefix of the timeline's history, none from the gap on).
      The `approximate:` time it suggests is fed back too: pitr must refuse it, or the
      restore must reach it (see KNOWN_BUGS).
  (3) `pitr --dry-run` leaves the repository byte-identical (and writes no journal); an
      unknown --svc exits 2, a serverName with no catalog behind it exits 2 and names it,
      a refused secret key exits 3 and says access denied / not authenticated; none of
      them writes anything.
  (4) `clone prod staging --svc shop` (the default target, latest, is not recoverable in
      this catalog: exit 1, nothing written), then with --to T: exit 0; the committed
      folder lints without errors and has a Flux Kustomization; its recovery Cluster,
      checked like (1), reads the source serverName from the source catalog, pins the
      proved backup when CloudNativePG would pick another, and archives under staging's
      backup_destination in its own empty folder; the restore it describes is proven like
      (1) (made once when it is exactly a restore already planned).

The restores run INTEGRATION_JOBS (default 2) at a time, their logs in WORKDIR/restores/logs.
Usage: test_runbooks.py [--workdir DIR] [--facts FILE] [--label runbooks] [--counts FILE]
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from common import (
    HERE,
    STORE_ENV_PREFIXES,
    IntegrationError,
    Results,
    cnpg_ops_binary,
    list_objects,
    load_env,
    log,
    parse_time,
    read_json,
    rfc3339,
    s3_client,
    write_json,
)
from restore import LATEST, LSN_RE, Lsn, RestoreResult, boundary_rows, expected_rows, parse_lsn, restore, target_text
from test_verdicts import lsn_restore_problems

FIXTURE = HERE.parent / "tests" / "fixtures" / "repos" / "selfhosted"
SHOP = "clusters/prod/databases/shop"
GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "cnpg-ops integration",
    "GIT_AUTHOR_EMAIL": "integration@example.invalid",
    "GIT_COMMITTER_NAME": "cnpg-ops integration",
    "GIT_COMMITTER_EMAIL": "integration@example.invalid",
    # no user or system git configuration (signing, hooks, default branch) leaks in
    "GIT_CONFIG_GLOBAL": os.devnull,
    "GIT_CONFIG_NOSYSTEM": "1",
}
S3_KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION", "AWS_REGION",
           "AWS_EC2_METADATA_DISABLED")
FATAL_NOT_REACHED = "recovery ended before configured recovery target was reached"

# Known cnpg-ops bugs this suite matches exactly (counted as XFAIL, not as passed).
KNOWN_BUGS = {
    "approximate-nearest-before-gap": (
        "the refusal of a target behind a WAL gap lists, under `nearest recoverable targets`, an "
        "`approximate:` time one second before the upload of the last segment before the gap; pitr "
        "accepts that time and commits it, but when no commit follows it inside that segment (the "
        "segment was closed by a switch, as with archive_timeout on a quiet database), PostgreSQL "
        f"needs the missing segment to find the stop point and fails: FATAL {FATAL_NOT_REACHED}"
    ),
}


# ------------------------------------------------------------------------ helpers


def git_env() -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_IDENTITY)
    return env


def git(repo: Path, *args: str) -> str:
    r = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, env=git_env(), timeout=60)
    if r.returncode != 0:
        raise IntegrationError(f"git {' '.join(args)} in {repo} failed: {r.stderr.strip()}")
    return r.stdout


def replace(path: Path, edits: list[tuple[str, str]]) -> None:
    """Exact replacements; a fixture that no longer holds `old` stops the suite."""
    text = path.read_text()
    for old, new in edits:
        if old not in text:
            raise IntegrationError(f"{path} no longer contains {old!r}: update test_runbooks.py")
        text = text.replace(old, new, 1)
    path.write_text(text)


def build_repo(path: Path, facts: dict, server_name: str) -> Path:
    """The selfhosted fixture, archiving to the harness's catalog, committed on main."""
    shutil.copytree(FIXTURE, path)
    replace(path / SHOP / "object-store.yaml", [
        ("destinationPath: s3://pg-backups-prod/", f"destinationPath: {facts['dest']}"),
        ("endpointURL: https://minio.prod.lan:9000", f"endpointURL: {facts['endpoint_url']}"),
        ("    endpointCA:\n      name: minio-ca\n      key: ca.crt\n", ""),   # plain HTTP
    ])
    major, minor = divmod(int(facts["pg_version_num"]), 10000)
    replace(path / SHOP / "database.yaml", [
        ("serverName: shop", f"serverName: {server_name}"),
        ("postgresql:16.10-standard-bookworm", f"postgresql:{major}.{minor}-standard-bookworm"),
    ])
    with open(path / ".cnpg-ops.toml", "a") as fh:
        fh.write(f'\n[env.staging]\nkube_context = "k3s-staging"\nendpoint_url = "{facts["endpoint_url"]}"\n'
                 f'backup_destination = "s3://{facts["bucket"]}/staging"\n')
    git(path, "init", "-q", "-b", "main")
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "selfhosted fixture archiving to the integration catalog")
    return path


def repo_state(repo: Path) -> dict:
    """Every file of the working tree (sha256), the refs, HEAD and `git status`."""
    files = {}
    for p in sorted(repo.rglob("*")):
        rel = p.relative_to(repo)
        if rel.parts[0] == ".git":
            continue
        files[str(rel)] = "dir" if p.is_dir() else hashlib.sha256(p.read_bytes()).hexdigest()
    return {
        "files": files,
        "refs": git(repo, "for-each-ref", "--format=%(refname) %(objectname)").splitlines(),
        "head": git(repo, "symbolic-ref", "HEAD").strip() + " " + git(repo, "rev-parse", "HEAD").strip(),
        "status": git(repo, "status", "--porcelain", "--untracked-files=all").splitlines(),
    }


def state_changes(before: dict, after: dict) -> list[str]:
    out = []
    for name in sorted(set(before["files"]) | set(after["files"])):
        if before["files"].get(name) != after["files"].get(name):
            out.append(f"{name}: {'changed' if name in before['files'] and name in after['files'] else 'added' if name in after['files'] else 'removed'}")
    if before["refs"] != after["refs"]:
        out.append(f"refs {sorted(set(after['refs']) - set(before['refs']))} appeared, "
                   f"{sorted(set(before['refs']) - set(after['refs']))} went")
    if before["head"] != after["head"]:
        out.append(f"HEAD {before['head']} -> {after['head']}")
    if before["status"] != after["status"]:
        out.append(f"git status {after['status']}")
    return out


def new_refs(before: dict, after: dict) -> list[str]:
    return sorted({r.split()[0] for r in after["refs"]} - {r.split()[0] for r in before["refs"]})


@dataclasses.dataclass
class Run:
    argv: list
    returncode: int | None
    stdout: str
    stderr: str
    seconds: float
    events: list | None = None
    error: str | None = None

    def brief(self, limit: int = 700) -> str:
        err = " ".join(self.stderr.split())
        if len(err) > limit:
            err = err[: limit // 2] + " ... " + err[-limit // 2:]
        return f"exit {self.returncode} after {self.seconds:.1f}s; stderr: {err or '(empty)'}"

    def event(self, event: str, step: str | None = None) -> dict | None:
        for e in self.events or []:
            if e.get("event") == event and (step is None or e.get("step") == step):
                return e
        return None

    def facts(self, step: str) -> dict:
        e = self.event("step_finished", step)
        return e.get("facts") or {} if e else {}


class Tool:
    def __init__(self, binary: Path, state_dir: Path, timings: dict):
        self.binary, self.state_dir, self.timings = binary, state_dir, timings

    def env(self, extra: dict | None) -> dict:
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(STORE_ENV_PREFIXES) and not k.startswith("GIT_") and k != "CNPG_OPS_REPO"}
        env.update({k: os.environ[k] for k in S3_KEYS if k in os.environ})
        env.update(GIT_IDENTITY)
        env.update({"CNPG_OPS_STATE_DIR": str(self.state_dir), "NO_COLOR": "1"})
        env.update(extra or {})
        return env

    def run(self, name: str, repo: Path, args: list, env: dict | None = None) -> Run:
        argv = [str(self.binary), *map(str, args)]
        started = time.monotonic()
        try:
            p = subprocess.run(argv, cwd=repo, capture_output=True, text=True, timeout=300, env=self.env(env))
        except (OSError, subprocess.TimeoutExpired) as exc:
            return Run(argv, None, "", str(exc), time.monotonic() - started, error=f"could not run: {exc}")
        run = Run(argv, p.returncode, p.stdout, p.stderr, time.monotonic() - started)
        self.timings[name] = round(run.seconds, 2)
        if args[0] in ("pitr", "clone") and "json" in args:
            try:
                run.events = [json.loads(line) for line in p.stdout.splitlines() if line.strip()]
            except json.JSONDecodeError as exc:
                run.error = f"stdout is not JSON Lines ({exc}); {run.brief()}"
        return run


# ------------------------------------------------------------- a small YAML reader
#
# setup.sh pins no YAML library in the venv, so the committed manifests are read with this:
# block mappings and sequences, plain and quoted scalars, `|`/`>` block scalars, flow
# sequences of scalars, comments and `---` documents -- what Kubernetes manifests use. A
# construct outside that subset raises IntegrationError rather than being misread.


def _strip_comment(s: str) -> str:
    quote = None
    for i, c in enumerate(s):
        if quote:
            if c == quote:
                quote = None
        elif c in "\"'" and (i == 0 or s[i - 1] in " [{,:"):
            quote = c
        elif c == "#" and (i == 0 or s[i - 1] in " \t"):
            return s[:i].rstrip()
    return s.rstrip()


def _split_key(s: str) -> tuple[str, str] | None:
    quote = None
    for i, c in enumerate(s):
        if quote:
            if c == quote:
                quote = None
        elif c in "\"'" and i == 0:
            quote = c
        elif c == ":" and (i + 1 == len(s) or s[i + 1] == " "):
            return _scalar(s[:i].strip()), s[i + 1:].strip()
    return None


def _scalar(v: str):
    if v[:1] == '"':
        return json.loads(v)
    if v[:1] == "'":
        return v[1:-1].replace("''", "'")
    if v[:1] == "[" and v[-1:] == "]":
        return [_scalar(x.strip()) for x in v[1:-1].split(",") if x.strip()]
    if v == "{}":
        return {}
    if v[:1] and v[0] in "{&*!|>":
        raise IntegrationError(f"YAML construct not supported by the test's reader: {v!r}")
    if v in ("true", "True", "false", "False"):
        return v.lower() == "true"
    if v in ("null", "~", ""):
        return None
    return int(v) if re.fullmatch(r"-?[0-9]+", v) else v


class _Yaml:
    def __init__(self, lines: list[str]):
        self.raw = lines
        self.rows = [[len(ln) - len(ln.lstrip(" ")), _strip_comment(ln.strip())] for ln in lines]
        self.i = 0

    def _skip(self) -> bool:
        while self.i < len(self.rows) and not self.rows[self.i][1]:
            self.i += 1
        return self.i < len(self.rows)

    def node(self, indent: int):
        if not self._skip() or self.rows[self.i][0] < indent:
            return None
        ind, text = self.rows[self.i]
        if text == "-" or text.startswith("- "):
            return self.seq(ind)
        if _split_key(text) is None:
            self.i += 1
            return _scalar(text)
        return self.mapping(ind)

    def seq(self, ind: int) -> list:
        out = []
        while self._skip():
            cur, text = self.rows[self.i]
            if cur != ind or not (text == "-" or text.startswith("- ")):
                break
            rest = text[1:].lstrip()
            if not rest:
                self.i += 1
                out.append(self.node(ind + 1))
            else:  # the item starts on this line, at the column after "- "
                self.rows[self.i] = [ind + len(text) - len(rest), rest]
                out.append(self.node(ind + 1))
        return out

    def mapping(self, ind: int) -> dict:
        out = {}
        while self._skip():
            cur, text = self.rows[self.i]
            if cur != ind or text.startswith("- ") or text == "-":
                break
            kv = _split_key(text)
            if kv is None:
                raise IntegrationError(f"YAML line not understood by the test's reader: {text!r}")
            key, value = kv
            self.i += 1
            if value[:1] and value[0] in "|>":
                body = []
                while self.i < len(self.rows) and (not self.raw[self.i].strip() or self.rows[self.i][0] > ind):
                    body.append(self.raw[self.i])
                    self.i += 1
                cut = min((len(b) - len(b.lstrip(" ")) for b in body if b.strip()), default=0)
                out[key] = "\n".join(b[cut:] for b in body).strip("\n") + ("" if value.endswith("-") else "\n")
            elif value:
                out[key] = _scalar(value)
            elif self._skip() and (self.rows[self.i][0] > ind or (
                    self.rows[self.i][0] == ind and self.rows[self.i][1][:2] in ("- ", "-"))):
                out[key] = self.node(self.rows[self.i][0])
            else:
                out[key] = None
        return out


def yaml_docs(text: str) -> list[dict]:
    """The mappings among the documents of a YAML stream."""
    docs, cur = [], []
    for line in text.splitlines():
        if line.rstrip() == "---" or line.startswith("--- "):
            docs.append(cur)
            cur = []
        elif line.rstrip() != "...":
            cur.append(line)
    docs.append(cur)
    out = []
    for lines in docs:
        y = _Yaml(lines)
        d = y.node(0)
        if y._skip():
            raise IntegrationError(f"YAML not fully read by the test's reader, stopped at {y.raw[y.i]!r}")
        if isinstance(d, dict):
            out.append(d)
    return out


def branch_docs(repo: Path, branch: str, folder: str) -> dict[str, list[dict]]:
    """Every YAML document under `folder` on `branch`, by file."""
    out = {}
    for f in git(repo, "ls-tree", "-r", "--name-only", branch, "--", folder).splitlines():
        if f.endswith((".yaml", ".yml")):
            text = git(repo, "show", f"{branch}:{f}")
            if "kind: ObjectStore" in text:
                out[f] = yaml_docs(text)
    return out


def dig(d, *keys):
    for k in keys:
        if isinstance(d, dict):
            d = d.get(k)
        elif isinstance(d, list) and isinstance(k, int) and k < len(d):
            d = d[k]
        else:
            return None
    return d


@dataclasses.dataclass
class Manifest:
    """The recovery Cluster a runbook committed, and what a restore of it needs."""
    file: str
    cluster: dict
    problems: list[str]
    source: dict | None = None        # {dest, server_name, endpoint_url} read by the recovery
    write: dict | None = None         # {dest, server_name} the new Cluster archives to
    target: object = None             # datetime, Lsn or LATEST
    target_tli: str | None = None
    backup_id: str | None = None

    @property
    def recovery(self) -> dict:
        return dig(self.cluster, "spec", "bootstrap", "recovery") or {}


def object_store(docs: dict, name: str, namespace: str | None) -> dict | None:
    for ds in docs.values():
        for d in ds:
            if d.get("kind") == "ObjectStore" and dig(d, "metadata", "name") == name and \
                    dig(d, "metadata", "namespace") in (namespace, None):
                return d
    return None


def barman_location(docs: dict, entry: dict, namespace: str | None, default_server: str) -> tuple[dict | None, str]:
    """{dest, server_name, endpoint_url} of an externalClusters entry or a plugins entry."""
    if "barmanObjectStore" in entry:
        cfg = entry["barmanObjectStore"]
        params = {"serverName": cfg.get("serverName")}
    else:
        params = dig(entry, "plugin", "parameters") or dig(entry, "parameters") or {}
        store = object_store(docs, params.get("barmanObjectName"), namespace)
        if store is None:
            return None, f"no ObjectStore {params.get('barmanObjectName')!r} in namespace {namespace} on the branch"
        cfg = dig(store, "spec", "configuration") or {}
    return {"dest": cfg.get("destinationPath"), "server_name": params.get("serverName") or default_server,
            "endpoint_url": cfg.get("endpointURL")}, ""


def read_manifest(repo: Path, branch: str, files: list[str]) -> Manifest | str:
    """The recovery Cluster among `files` on `branch`, resolved against its folder."""
    found = []
    for f in files:
        if not f.endswith((".yaml", ".yml")):
            continue
        for d in yaml_docs(git(repo, "show", f"{branch}:{f}")):
            if d.get("kind") == "Cluster" and dig(d, "spec", "bootstrap", "recovery"):
                found.append((f, d))
    if len(found) != 1:
        return f"expected one recovery Cluster among {files}, found {[f for f, _ in found]}"
    f, cluster = found[0]
    m = Manifest(f, cluster, [])
    docs = branch_docs(repo, branch, str(Path(f).parent))
    ns = dig(cluster, "metadata", "namespace")
    rec = m.recovery
    src = [e for e in dig(cluster, "spec", "externalClusters") or [] if e.get("name") == rec.get("source")]
    if len(src) != 1:
        m.problems.append(f"bootstrap.recovery.source {rec.get('source')!r} is not one externalClusters entry")
    else:
        m.source, why = barman_location(docs, src[0], ns, src[0]["name"])
        if why:
            m.problems.append(why)
    archivers = [p for p in dig(cluster, "spec", "plugins") or [] if p.get("isWALArchiver")]
    if archivers:
        m.write, why = barman_location(docs, archivers[0], ns, dig(cluster, "metadata", "name"))
        if why:
            m.problems.append(why)
    elif dig(cluster, "spec", "backup", "barmanObjectStore"):
        m.write, _ = barman_location(docs, dig(cluster, "spec", "backup"), ns, dig(cluster, "metadata", "name"))
    rt = rec.get("recoveryTarget") or {}
    try:
        if "targetTime" in rt:
            m.target = parse_time(str(rt["targetTime"]))
            if not re.search(r"(Z|[+-]\d{2}(:?\d{2})?)$", str(rt["targetTime"])):
                m.problems.append(f"targetTime {rt['targetTime']!r} has no explicit offset")
        elif "targetLSN" in rt:
            m.target = Lsn(str(rt["targetLSN"]))
        else:
            m.target = LATEST
    except ValueError as exc:
        m.problems.append(f"recoveryTarget unreadable: {exc}")
    m.target_tli = str(rt["targetTLI"]) if "targetTLI" in rt else None
    m.backup_id = str(rt["backupID"]) if "backupID" in rt else None
    return m


def cnpg_choice(facts: dict, target, tli: str | None) -> str | None:
    """The backup CloudNativePG restores when backupID is not set: the newest backup, whatever
    its status, that ended at or before the target (end_time for a time, end LSN for an
    LSN), among the backups taken on targetTLI when that is a number."""
    cands = [b for b in facts["backups"] if b.get("end_time") and b.get("end_xlog")]
    if tli and tli.isdigit():
        cands = [b for b in cands if b["timeline"] == int(tli)]
    if isinstance(target, Lsn):
        cands = [b for b in cands if parse_lsn(b["end_xlog"]) <= target.value]
        key = lambda b: parse_lsn(b["end_xlog"])  # noqa: E731
    elif isinstance(target, dt.datetime):
        cands = [b for b in cands if parse_time(b["end_time"]) <= target]
        key = lambda b: parse_time(b["end_time"])  # noqa: E731
    else:
        key = lambda b: parse_time(b["end_time"])  # noqa: E731
    return max(cands, key=key)["id"] if cands else None


def image_major(image: str | None) -> int | None:
    m = re.search(r":(\d+)(?:[.-]|$)", image or "")
    return int(m.group(1)) if m else None


def nearest(stderr: str) -> list[dict]:
    """The `--to X --timeline N (kind: ...)` entries of `nearest recoverable targets`."""
    line = next((ln for ln in stderr.splitlines() if "nearest recoverable targets:" in ln), "")
    return [{"to": m.group(1), "timeline": m.group(2), "kind": m.group(3)}
            for m in re.finditer(r"--to (\S+) --timeline (\S+) \((exact|approximate):", line)]


def lint(tool: Tool, repo: Path, branch: str, workdir: Path, name: str) -> tuple[Run, list[dict]]:
    """`cnpg-ops lint -o json` on a clone of `branch` (lint reads git history)."""
    where = workdir / name
    shutil.rmtree(where, ignore_errors=True)
    git(repo, "clone", "-q", "--branch", branch, str(repo), str(where))
    r = tool.run(f"lint {name}", where, ["lint", str(where), "-o", "json"])
    try:
        return r, json.loads(r.stdout).get("findings", [])
    except (json.JSONDecodeError, AttributeError):
        r.error = f"lint output is not JSON; {r.brief()}"
        return r, []


# ---------------------------------------------------------------------- the checks


@dataclasses.dataclass
class Proof:
    """A committed recovery to prove with a real restore."""
    name: str
    manifest: Manifest
    backup: str
    timeline: int | None             # the timeline prove-target named (recovery follows it)
    kind: str = "reached"            # reached | lsn | suggestion (reached, or the known bug)

    @property
    def key(self) -> tuple:
        s = self.manifest.source
        return (s["dest"], s["server_name"], s["endpoint_url"], self.backup,
                target_text(self.manifest.target), self.manifest.target_tli)


class Suite:
    def __init__(self, settings: dict, facts: dict, binary: Path, tmp: Path, results: Results):
        self.settings, self.facts, self.tmp = settings, facts, tmp
        self.results = results
        self.timings: dict = {}
        self.state_dir = tmp / "state"
        self.state_dir.mkdir()
        self.tool = Tool(binary, self.state_dir, self.timings)
        self.repo = build_repo(tmp / "repo", facts, facts["server_name"])
        self.proofs: list[Proof] = []
        self.s3 = s3_client(settings["endpoint_url"])
        B = {b["label"]: b for b in facts["backups"]}
        G = {g["label"]: g for g in facts["groups"]}
        self.B = B
        mid = lambda a, b: parse_time(G[a]["last_commit"]) + (parse_time(G[b]["first_commit"]) - parse_time(G[a]["last_commit"])) / 2  # noqa: E731
        # (1): on timeline 2 after the failover; the FAILED backup F3 is the newest ending before it
        self.t_good = mid("first_tli2", "before_b4")
        if not (parse_time(B["F3"]["end_time"]) < self.t_good < parse_time(B["B4"]["end_time"])
                and cnpg_choice(facts, self.t_good, None) == B["F3"]["id"] and B["F3"]["status"] == "FAILED"):
            raise IntegrationError("harness error: the FAILED backup F3 is not CloudNativePG's own choice for "
                                   f"{rfc3339(self.t_good)}; the catalog timing is off")
        # (2): between the rows of the deleted segment and the next ones
        self.t_gap = mid("in_gap", "after_gap")
        self.gap = facts["deleted_segment"]["name"]
        self.check = self.results.check

    def pitr(self, name: str, *args, env: dict | None = None, json_out: bool = True) -> Run:
        argv = ["pitr", "--env", "prod", "--svc", "shop", *args] + (["-o", "json"] if json_out else [])
        return self.tool.run(name, self.repo, argv, env)

    # -- (1)
    def committed(self, label: str, r: Run, before: dict, want_target, want_tli: str | None = None,
                  kind: str = "reached", prefix: str = "pitr") -> Proof | None:
        """The checks shared by every committing run; returns the restore to make."""
        after = repo_state(self.repo)
        ok = r.returncode == 0 and not r.error and (r.event("summary") or {}).get("status") == "succeeded"
        self.check(f"{label}: exit 0, JSON events end in `succeeded`", ok,
                   r.error or (f"{r.seconds:.1f}s" if ok else r.brief()))
        if not ok:
            return None
        wm, prove, prefix_facts = r.facts("write-manifests"), r.facts("prove-target"), r.facts("check-write-prefix")
        branch, files = wm.get("branch"), wm.get("files") or []
        refs = new_refs(before, after)
        checkout = [c for c in state_changes(before | {"refs": after["refs"]}, after)]
        self.check(f"{label}: one new branch, {branch}, and the checkout untouched",
                   refs == [f"refs/heads/{branch}"] and not checkout and
                   git(self.repo, "rev-parse", f"{branch}^").strip() == before["head"].split()[1],
                   f"new refs {refs}; checkout changes {checkout}; files {files}")
        m = read_manifest(self.repo, branch, files)
        if isinstance(m, str):
            self.check(f"{label}: the committed recovery Cluster", False, m)
            return None
        problems = list(m.problems)
        name = dig(m.cluster, "metadata", "name")
        folder = str(Path(m.file).parent)
        kust = f"{folder}/kustomization.yaml"
        listed = dig(yaml_docs(git(self.repo, "show", f"{branch}:{kust}"))[0], "resources") \
            if kust in files else None
        if not listed or Path(m.file).name not in listed:
            problems.append(f"{m.file} is not listed in {kust} (committed: {kust in files})")
        if prefix == "clone":
            flux = [d for f in files if f.endswith((".yaml", ".yml")) and f not in (m.file, kust)
                    for d in yaml_docs(git(self.repo, "show", f"{branch}:{f}"))
                    if d.get("kind") == "Kustomization" and str(dig(d, "spec", "path")).strip("./") == folder]
            if not flux:
                problems.append(f"no Flux Kustomization with spec.path ./{folder} among {files}")
        # the target, exactly
        if isinstance(want_target, dt.datetime):
            if not isinstance(m.target, dt.datetime) or m.target != want_target:
                problems.append(f"targetTime {m.recovery.get('recoveryTarget')} is not {rfc3339(want_target)}")
        elif isinstance(want_target, Lsn):
            if not isinstance(m.target, Lsn) or m.target.value != want_target.value:
                problems.append(f"targetLSN {m.recovery.get('recoveryTarget')} is not {want_target}")
        if want_tli is not None and m.target_tli != want_tli:
            problems.append(f"targetTLI {m.target_tli!r}, expected {want_tli!r}")
        # the catalog it reads and the one it writes
        src = m.source or {}
        want_src = {"dest": self.facts["dest"], "server_name": self.facts["server_name"],
                    "endpoint_url": self.facts["endpoint_url"]}
        if {k: str(src.get(k) or "").rstrip("/") for k in want_src} != want_src:
            problems.append(f"reads {src}, expected {want_src}")
        w = m.write or {}
        if not w or (w.get("dest"), w.get("server_name")) != (prefix_facts.get("write_destination"),
                                                               prefix_facts.get("write_server_name")):
            problems.append(f"archives to {w}, not where check-write-prefix proved empty {prefix_facts}")
        if w and (str(w.get("dest")).rstrip("/"), w.get("server_name")) == (want_src["dest"], want_src["server_name"]):
            problems.append(f"archives into the source's own folder {w}")
        elif w:
            bucket, _, path = str(w.get("dest")).removeprefix("s3://").partition("/")
            key = "/".join(x for x in (path.strip("/"), str(w.get("server_name"))) if x) + "/"
            held = list_objects(self.s3, bucket, key)
            if held:
                problems.append(f"s3://{bucket}/{key} is not empty: {[o['Key'] for o in held[:3]]}")
        # the backup
        anchor = prove.get("backup_id")
        choice = cnpg_choice(self.facts, m.target, m.target_tli)
        if not prove.get("recoverable") or not anchor:
            problems.append(f"prove-target facts {prove}")
        elif m.backup_id is not None and m.backup_id != anchor:
            problems.append(f"backupID {m.backup_id} is not the proved anchor {anchor}")
        elif m.backup_id is None and choice != anchor:
            problems.append(f"no backupID, so CloudNativePG would restore {choice}, not the proved anchor {anchor}")
        major, image = int(self.facts["pg_version_num"]) // 10000, dig(m.cluster, "spec", "imageName")
        if image_major(image) != major:
            problems.append(f"imageName {image} is not PostgreSQL {major}, which wrote the catalog")
        pin = f"backupID {m.backup_id}" if m.backup_id else f"no backupID (CloudNativePG picks {choice} itself)"
        self.check(f"{label}: the committed Cluster {name} ({m.file}) reads {self.facts['server_name']} at "
                   f"{target_text(m.target)}, {pin}, archives to its own empty {w.get('server_name')}",
                   not problems, "; ".join(problems) if problems else
                   f"anchor {anchor}, {prove.get('wal_from')} .. {prove.get('wal_to')} on timeline {prove.get('timeline')}")
        lr, findings = lint(self.tool, self.repo, branch, self.tmp, f"lint-{prefix}-{len(self.proofs)}")
        errors = [f for f in findings if f.get("severity") == "error"]
        self.check(f"{label}: `cnpg-ops lint` on {branch}: no error", lr.returncode == 0 and not lr.error and not errors,
                   lr.error or "; ".join(f"{f.get('file')}:{f.get('line')} [{f.get('rule')}] {f.get('message')}"
                                         for f in errors) or f"{len(findings)} findings, none an error")
        if m.problems or not m.source or not anchor:
            return None
        return Proof(label, m, m.backup_id or anchor, prove.get("timeline"), kind)

    def part1(self) -> None:
        log("(3) dry run first, on the untouched repository")
        before = repo_state(self.repo)
        journals = sorted(os.listdir(self.state_dir))
        plus2 = self.t_good.astimezone(dt.timezone(dt.timedelta(hours=2)))
        r = self.pitr("pitr --dry-run", "--to", plus2.isoformat(timespec="microseconds"), "--dry-run", json_out=False)
        problems = state_changes(before, repo_state(self.repo))
        if r.returncode != 0:
            problems.append(r.brief())
        if f"+++ b/{SHOP}/shop-pitr-" not in r.stdout:
            problems.append(f"no diff of {SHOP}/shop-pitr-*.yaml in stdout")
        if sorted(os.listdir(self.state_dir)) != journals:
            problems.append(f"journal written: {sorted(os.listdir(self.state_dir))}")
        self.check("pitr --dry-run: exit 0, prints the diff of the recovery Cluster, repository byte-identical, "
                   "no journal", not problems, "; ".join(problems) or "identical")

        log("(1) pitr to a recoverable time, given with a +02:00 offset")
        r = self.pitr("pitr time", "--to", plus2.isoformat(timespec="microseconds"))
        proof = self.committed(f"pitr --to {plus2.isoformat(timespec='microseconds')}", r, before, self.t_good)
        if proof:
            self.proofs.append(proof)

    # -- (2)
    def part2(self) -> None:
        log("(2) pitr to a target behind the deleted segment")
        before = repo_state(self.repo)
        r = self.pitr("pitr behind the gap", "--to", rfc3339(self.t_gap), json_out=False)
        changes = state_changes(before, repo_state(self.repo))
        self.check(f"pitr --to {rfc3339(self.t_gap)} (behind the gap): exit 1, nothing written",
                   r.returncode == 1 and not changes, "; ".join(changes) or r.brief())
        suggested = nearest(r.stderr)
        self.check(f"pitr behind the gap: stderr names the missing segment {self.gap} and the nearest targets",
                   self.gap in r.stderr and bool(suggested),
                   f"suggested {suggested}" if self.gap in r.stderr and suggested else r.brief(1200))
        exact = [s for s in suggested if s["kind"] == "exact" and LSN_RE.match(s["to"])]
        if not exact:
            self.check("pitr behind the gap: an `exact:` LSN among the nearest targets", False, r.brief(1200))
        else:
            s = exact[0]
            before = repo_state(self.repo)
            r2 = self.pitr("pitr exact LSN", "--to", s["to"], "--timeline", s["timeline"])
            proof = self.committed(f"pitr --to {s['to']} --timeline {s['timeline']} (the exact suggestion)",
                                   r2, before, Lsn(s["to"]), s["timeline"], kind="lsn")
            if proof:
                self.proofs.append(proof)
        for s in [s for s in suggested if s["kind"] == "approximate"][:1]:
            before = repo_state(self.repo)
            # --into/--branch: the label has minute resolution and may be (1)'s
            r3 = self.pitr("pitr approximate", "--to", s["to"], "--timeline", s["timeline"],
                           "--into", "shop-pitr-approx", "--branch", "cnpg-ops/pitr-prod-shop-approx")
            if r3.returncode == 1 and not state_changes(before, repo_state(self.repo)):
                self.check(f"pitr --to {s['to']} --timeline {s['timeline']} (the approximate suggestion): "
                           "refused, nothing written", True, "")
                continue
            try:
                want = parse_time(s["to"])
            except ValueError:
                want = None
            proof = self.committed(f"pitr --to {s['to']} --timeline {s['timeline']} (the approximate suggestion)",
                                   r3, before, want, s["timeline"], kind="suggestion")
            if proof:
                self.proofs.append(proof)

    # -- (3)
    def part3(self) -> None:
        log("(3) bad input and unreadable catalogs")
        target = rfc3339(self.t_good)
        before = repo_state(self.repo)
        r = self.tool.run("pitr unknown svc", self.repo, ["pitr", "--env", "prod", "--svc", "nope", "--to", target])
        changes = state_changes(before, repo_state(self.repo))
        self.check("pitr --svc nope: exit 2, names the database, nothing written",
                   r.returncode == 2 and "no database `nope` in env `prod`" in r.stderr and not changes,
                   "; ".join(changes) or r.brief())

        wrong = build_repo(self.tmp / "repo-wrong-server", self.facts, "pg-absent")
        before_w = repo_state(wrong)
        r = self.tool.run("pitr wrong serverName", wrong, ["pitr", "--env", "prod", "--svc", "shop", "--to", target])
        changes = state_changes(before_w, repo_state(wrong))
        self.check("pitr with serverName pg-absent (no catalog there): exit 2, names it, nothing written",
                   r.returncode == 2 and "pg-absent" in r.stderr and not changes, "; ".join(changes) or r.brief())

        secret = os.environ.get("AWS_SECRET_ACCESS_KEY", "")
        wrong_secret = ("0" if secret[:1] != "0" else "1") + secret[1:]
        r = self.tool.run("pitr refused credentials", self.repo, ["pitr", "--env", "prod", "--svc", "shop", "--to", target],
                          env={"AWS_SECRET_ACCESS_KEY": wrong_secret})
        changes = state_changes(before, repo_state(self.repo))
        said = re.search(r"access denied|not authenticated", r.stderr, re.I)
        self.check("pitr with a secret key the S3 server refuses: exit 3, says so, nothing written",
                   r.returncode == 3 and bool(said) and not changes, "; ".join(changes) or r.brief())

    # -- (4)
    def part4(self) -> None:
        log("(4) clone prod -> staging")
        before = repo_state(self.repo)
        r = self.tool.run("clone latest", self.repo, ["clone", "prod", "staging", "--svc", "shop", "-o", "json"])
        if "not available yet" in r.stdout + r.stderr:
            self.results.skip("clone prod staging --svc shop", "this binary cannot clone into a new folder yet")
            return
        changes = state_changes(before, repo_state(self.repo))
        self.check(f"clone prod staging --svc shop (latest, not recoverable: {self.gap} is missing): exit 1, "
                   "nothing written", r.returncode == 1 and not changes and
                   (r.event("step_failed", "prove-target") is not None),
                   "; ".join(changes) or r.brief())
        target = rfc3339(self.t_good)
        r = self.tool.run("clone time", self.repo, ["clone", "prod", "staging", "--svc", "shop", "--to", target, "-o", "json"])
        proof = self.committed(f"clone prod staging --svc shop --to {target}", r, before, self.t_good, prefix="clone")
        if proof:
            w = proof.manifest.write or {}
            self.check("clone: archives under staging's backup_destination, not into prod's catalog",
                       str(w.get("dest", "")).rstrip("/") == f"s3://{self.facts['bucket']}/staging", str(w))
            self.proofs.append(proof)

    # -- the restores
    def restores(self) -> None:
        plan: dict[tuple, Proof] = {}
        for p in self.proofs:
            plan.setdefault(p.key, p)
        jobs = int(os.environ.get("INTEGRATION_JOBS", "2"))
        log(f"{len(plan)} real restores for {len(self.proofs)} committed recoveries, {jobs} at a time")
        started = time.monotonic()

        def do(item: tuple[int, Proof]) -> tuple[tuple, RestoreResult]:
            i, p = item
            s = p.manifest.source
            where = self.facts | {"dest": s["dest"].rstrip("/"), "server_name": s["server_name"],
                                  "endpoint_url": s["endpoint_url"]}
            return p.key, restore(self.settings, where, p.backup, p.manifest.target, f"runbooks-{i}-{p.kind}",
                                  p.manifest.target_tli)

        with ThreadPoolExecutor(max_workers=jobs) as pool:
            done = dict(pool.map(do, enumerate(plan.values())))
        self.timings["restores (wall)"] = round(time.monotonic() - started, 1)
        for p in self.proofs:
            res = done[p.key]
            first = plan[p.key] is p
            self.timings[f"restore for {p.name}" + ("" if first else f" (the one of {plan[p.key].name})")] = \
                res.seconds if first else 0.0
            m = p.manifest
            tli = int(m.target_tli) if m.target_tli and m.target_tli.isdigit() else None
            exp, may = expected_rows(self.facts, m.target, tli), boundary_rows(self.facts, m.target, tli)
            where = f"from {p.backup} to {target_text(m.target)}" + (f" on timeline {m.target_tli}" if m.target_tli else "")
            if p.kind == "lsn":
                problems = lsn_restore_problems(self.facts, res, m.target, tli)
                self.check(f"restore of {p.name} {where}: PostgreSQL stops at the LSN and promotes, rows a prefix, "
                           "none from the gap on", not problems, "; ".join(problems) or res.describe(exp, may))
                continue
            got = res.classify(exp, may)
            ok = got == "reached" and res.history_parent == p.timeline
            detail = res.describe(exp, may)
            if res.outcome == "promoted" and res.history_parent != p.timeline:
                detail += f"; followed timeline {res.history_parent}, prove-target said {p.timeline}"
            name = f"restore of {p.name} {where}: PostgreSQL reaches it along timeline {p.timeline}"
            if p.kind == "suggestion" and not ok and res.outcome == "fatal" and res.fatal == FATAL_NOT_REACHED:
                self.results.xfail(name, "approximate-nearest-before-gap", detail)
            else:
                self.check(name, ok, detail)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workdir")
    ap.add_argument("--facts", help="facts.json of make_catalog.py (default: WORKDIR/facts.json)")
    ap.add_argument("--label", default="runbooks", help="name on the summary line")
    ap.add_argument("--counts", help="also write the counts to this JSON file (run.sh sums them)")
    args = ap.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    settings = load_env(args.workdir)
    facts = read_json(args.facts or settings["workdir"] / "facts.json")
    binary = cnpg_ops_binary()
    started = time.monotonic()
    print()
    results = Results()
    if not results.check("cnpg-ops binary exists", binary.is_file() and os.access(binary, os.X_OK), str(binary)):
        return results.summary(args.label, args.counts)
    tmp = Path(tempfile.mkdtemp(prefix="runbooks.", dir=settings["workdir"]))
    suite = Suite(settings, facts, binary, tmp, results)
    for part in (suite.part1, suite.part2, suite.part3, suite.part4):
        part()
    suite.restores()
    if results.xfails:
        print("\nknown bugs:")
        for bug, text in KNOWN_BUGS.items():
            if any(bug in x for x in results.xfails):
                print(f"  {bug}: {text}")
    write_json(settings["workdir"] / "runbooks-timings.json", suite.timings)
    print("\nseconds per run:")
    for name, secs in suite.timings.items():
        print(f"  {secs:6.2f}  {name}")
    log(f"runbooks: {time.monotonic() - started:.0f}s in all")
    if results.failed == 0:
        shutil.rmtree(tmp, ignore_errors=True)
    else:
        print(f"repositories kept in {tmp}")
    return results.summary(args.label, args.counts)


if __name__ == "__main__":
    sys.exit(main())
