#!/usr/bin/env python3
"""How cnpg-ops behaves when the object store fails, against the real S3 server (Garage).

cnpg-ops talks to Garage through s3proxy.FaultProxy, which answers chosen requests with S3
errors. The contract under test (README, "Exit codes"): a listing is complete or an error --
a page that fails after its retries fails the command with exit 3 and a message naming the
listing, never a gap or a verdict; a single unreadable backup.info is reported by name and
the rest of the catalog is still judged.

  (a) persistent 500 on the 2nd and later pages of the `wals/` listing (a synthetic catalog
      of 3000 WAL objects written by `examples/gen_catalog`, so the listing has several
      pages), for each listing strategy: exit 3, the message names the listing, no verdict
      on stdout; the proxy shows cnpg-ops retried before giving up.
  (b) the same pages failing ONCE (500 or 503), then succeeding: cnpg-ops retries and prints
      exactly what it prints without the fault.
  (c) GET of the newest DONE backup's backup.info answers 403, on the real catalog of
      make_catalog.py: `catalog show` still runs and reports `backup-info-unreadable`
      naming that object; `catalog check` judges from the other backups.
  (d) wrong bucket, wrong secret key, unknown key id, nothing listening, unresolvable host:
      exit 3 and the message says which.

Usage: test_failures.py [--workdir DIR] [--facts FILE] [--label failures] [--counts FILE]
Variables: CNPG_OPS_BIN; GEN_CATALOG_BIN (default: target/debug/examples/gen_catalog, else
target/release/examples/gen_catalog, else built with `cargo build --example gen_catalog`).
"""

from __future__ import annotations

import argparse
import json
import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from common import (
    HERE,
    CliRun,
    IntegrationError,
    Results,
    cnpg_ops_binary,
    list_objects,
    load_env,
    log,
    parse_time,
    read_json,
    rfc3339,
    run_cli,
    s3_client,
    write_json,
)
from s3proxy import FaultProxy, Request, Rule

SYNTH_PREFIX = "synthetic"
SYNTH_SERVER = "synth"
SYNTH_WAL_OBJECTS = 3000
PAGE = 1000
MS = dt.timedelta(milliseconds=1)

STRATEGIES = (None, "sequential", "dirs")   # None: the default (auto = ranges on S3)


def strategy_args(strategy: str | None) -> list[str]:
    return ["--list-strategy", strategy] if strategy else []


def strategy_name(strategy: str | None) -> str:
    return strategy or "default (ranges)"


# -------------------------------------------------------------------------- helpers


def s3_env(endpoint: str | None = None, **override) -> dict:
    env = {k: os.environ[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION",
                                      "AWS_REGION", "AWS_EC2_METADATA_DISABLED") if k in os.environ}
    if endpoint:
        env["AWS_ENDPOINT_URL"] = endpoint
    env.update(override)
    return env


def no_verdict(run: CliRun) -> list[str]:
    """Problems if stdout carries anything that looks like a verdict or a catalog."""
    out = run.stdout
    bad = [w for w in ('"recoverable"', '"gaps"', '"backups"', '"missing_wal"') if w in out]
    return [f"stdout carries {', '.join(bad)}: {out.strip()[:300]}"] if bad else []


def gen_catalog_binary(repo: Path) -> Path:
    env = os.environ.get("GEN_CATALOG_BIN")
    if env:
        return Path(env)
    for profile in ("debug", "release"):
        p = repo / "target" / profile / "examples" / "gen_catalog"
        if p.is_file():
            return p
    log("building examples/gen_catalog (cargo build --locked --example gen_catalog)")
    r = subprocess.run(["cargo", "build", "--locked", "--example", "gen_catalog"], cwd=repo,
                       capture_output=True, text=True)
    p = repo / "target" / "debug" / "examples" / "gen_catalog"
    if r.returncode != 0 or not p.is_file():
        raise IntegrationError(f"cargo build --example gen_catalog failed:\n{r.stderr[-2000:]}")
    return p


def write_synthetic_catalog(settings: dict) -> list[str]:
    """3000 WAL objects (one timeline, 12 hash directories) and one DONE backup; returns the
    sorted WAL keys as the store lists them."""
    s3 = s3_client(settings["endpoint_url"])
    root = f"{SYNTH_PREFIX}/{SYNTH_SERVER}/wals/"
    keys = [o["Key"] for o in list_objects(s3, settings["bucket"], root)]
    if len(keys) < SYNTH_WAL_OBJECTS:
        binary = gen_catalog_binary(HERE.parent)
        started = time.monotonic()
        r = subprocess.run([str(binary), f"s3://{settings['bucket']}/{SYNTH_PREFIX}", SYNTH_SERVER,
                            str(SYNTH_WAL_OBJECTS)], capture_output=True, text=True, timeout=300,
                           env=dict(os.environ, **s3_env(settings["endpoint_url"])))
        if r.returncode != 0:
            raise IntegrationError(f"gen_catalog failed ({r.returncode}): {r.stderr[-2000:]}")
        log(f"gen_catalog wrote the synthetic catalog in {time.monotonic() - started:.1f}s")
        keys = [o["Key"] for o in list_objects(s3, settings["bucket"], root)]
    if len(keys) < SYNTH_WAL_OBJECTS:
        raise IntegrationError(f"expected {SYNTH_WAL_OBJECTS} WAL objects under {root}, found {len(keys)}")
    return sorted(keys)


# ---------------------------------------------------------------- (a) and (b): pages


def later_wal_pages(wal_root: str, wal_keys: list[str]):
    """A matcher for the `wals/` listing requests that fetch anything past its first page of
    1000 keys, whatever the strategy: a continuation page (sequential), a range starting
    after the first page's last key (ranges), or a hash directory beyond it (dirs). The
    one-key probes of the ranges strategy (max-keys=1) are left alone so that the failure
    hits real pages."""
    last_of_first_page = wal_keys[PAGE - 1]
    first_dir_after = wal_keys[PAGE][: len(wal_root) + 17]   # "<root>TTTTTTTTLLLLLLLL/"

    def match(req: Request) -> bool:
        if not req.is_list:
            return False
        prefix = req.query.get("prefix", "")
        if not prefix.startswith(wal_root) or req.query.get("max-keys") == "1":
            return False
        if "continuation-token" in req.query:
            return True
        start_after = req.query.get("start-after")
        if start_after and start_after >= last_of_first_page:
            return True
        return prefix != wal_root and prefix >= first_dir_after

    return match


def check_pages(results: Results, binary: Path, proxy: FaultProxy, settings: dict, timings: dict) -> None:
    wal_keys = write_synthetic_catalog(settings)
    dest = f"s3://{settings['bucket']}/{SYNTH_PREFIX}"
    wal_root = f"{SYNTH_PREFIX}/{SYNTH_SERVER}/wals/"
    listing_name = f"s3://{settings['bucket']}/{wal_root}"
    match = later_wal_pages(wal_root, wal_keys)
    env = s3_env()
    common = ["--server-name", SYNTH_SERVER, "--endpoint-url", proxy.url, "-o", "json"]
    log(f"synthetic catalog: {len(wal_keys)} WAL objects under {wal_root}")

    def run(command: str, strategy, *extra) -> CliRun:
        args = ["catalog", command, dest, *extra, *common, *strategy_args(strategy)]
        return run_cli(binary, args, env, timeout=300)

    # the fault-free baseline, through the same proxy
    baseline: dict = {}
    for strategy in STRATEGIES:
        proxy.clear()
        r = run("check", strategy, "--to", "latest")
        later = sum(1 for q in proxy.requests_seen() if match(q))
        ok = r.error is None and r.returncode == 0 and r.json.get("recoverable") is True and later > 0
        results.check(f"baseline {strategy_name(strategy)}: check --to latest recoverable through the proxy, "
                      f"listing past the first page", ok,
                      f"{later} later-page list requests, {r.seconds:.1f}s" if ok else
                      f"{r.error or r.json}; {later} later-page list requests; {r.brief()}")
        baseline[("check", strategy)] = r
    proxy.clear()
    show_base = run("show", None)
    results.check("baseline default: catalog show", show_base.error is None and show_base.returncode in (0, 1),
                  show_base.error or f"{len(show_base.json.get('backups', []))} backups, "
                                      f"gaps {show_base.json.get('gaps')}")

    # (a) persistent 500
    for strategy in STRATEGIES:
        for command in (("check", "--to", "latest"), ("show",)) if strategy is None else (("check", "--to", "latest"),):
            proxy.clear()
            rule = proxy.add_rule(Rule("later wals/ pages: 500", match, 500, "InternalError"))
            r = run(command[0], strategy, *command[1:])
            name = f"persistent 500 on later wals/ pages, {strategy_name(strategy)}: catalog {command[0]}"
            timings[name] = round(r.seconds, 1)
            problems = []
            if r.returncode != 3:
                problems.append(f"exit {r.returncode}, expected 3")
            if "listing" not in r.stderr or listing_name not in r.stderr:
                problems.append(f"the message does not name the listing {listing_name}")
            problems += no_verdict(r)
            if rule.refused < 2:
                problems.append(f"the proxy refused {rule.refused} request(s): no retry seen")
            results.check(f"{name}: exit 3 naming the listing, no verdict", not problems,
                          "; ".join(problems + [r.brief()]) if problems else
                          f"{r.seconds:.1f}s, {rule.refused} refused requests (retries included); "
                          f"{r.stderr.strip().splitlines()[0][:200]}")
            if command[0] == "check" and r.returncode == 3:
                # Until 62f9a2a every exhausted retry was reported as 'timed out'.
                results.check(f"{name}: the message does not call a 500 a timeout", "timed out" not in r.stderr,
                              r.brief(300))

    # (b) transient 500/503: one refused page, then the retry goes through
    for strategy, status, code in ((None, 503, "SlowDown"), ("sequential", 500, "InternalError"),
                                   ("dirs", 500, "InternalError")):
        for command in (("check", "--to", "latest"), ("show",)) if strategy is None else (("check", "--to", "latest"),):
            proxy.clear()
            rule = proxy.add_rule(Rule(f"one later wals/ page: {status}", match, status, code, times=1))
            r = run(command[0], strategy, *command[1:])
            base = baseline[("check", strategy)] if command[0] == "check" else show_base
            name = f"transient {status} on one later wals/ page, {strategy_name(strategy)}: catalog {command[0]}"
            timings[name] = round(r.seconds, 1)
            problems = []
            if rule.refused != 1 or rule.matched < 2:
                problems.append(f"fault not exercised: refused {rule.refused}, matched {rule.matched}")
            if r.returncode != base.returncode:
                problems.append(f"exit {r.returncode}, without the fault {base.returncode}")
            if r.error:
                problems.append(r.error)
            elif r.json != base.json:
                diff = sorted(k for k in set(r.json) | set(base.json) if r.json.get(k) != base.json.get(k))
                shown = "; ".join(f"{k}: {json.dumps(r.json.get(k))[:400]} (without the fault "
                                  f"{json.dumps(base.json.get(k))[:400]})" for k in diff)
                problems.append(f"output differs from the fault-free run in {diff}: {shown}")
            results.check(f"{name}: retried, same output as without the fault", not problems,
                          "; ".join(problems + [r.brief()]) if problems else f"{r.seconds:.1f}s")


# ------------------------------------------------------------ (c) unreadable backup.info


def check_unreadable_info(results: Results, binary: Path, proxy: FaultProxy, facts: dict) -> None:
    backups = {b["label"]: b for b in facts["backups"]}
    b2, b4 = backups["B2"], backups["B4"]
    key = f"{facts['catalog_root']}base/{b4['id']}/backup.info"
    env = s3_env()
    common = ["--server-name", facts["server_name"], "--endpoint-url", proxy.url, "-o", "json"]
    target = rfc3339(parse_time(b4["end_time"]) + MS)

    proxy.clear()
    r = run_cli(binary, ["catalog", "check", facts["dest"], "--to", target, *common], env)
    results.check(f"baseline: 1 ms after B4 ends, recoverable from B4 {b4['id']} through the proxy",
                  r.error is None and r.returncode == 0 and r.json.get("backup_id") == b4["id"],
                  r.error or f"backup_id {r.json.get('backup_id')}, exit {r.returncode}")

    def deny(req: Request) -> bool:
        return req.method == "GET" and req.key == key

    proxy.clear()
    rule = proxy.add_rule(Rule(f"GET {key}: 403", deny, 403, "AccessDenied"))
    r = run_cli(binary, ["catalog", "show", facts["dest"], *common], env)
    problems = [r.error] if r.error else []
    if rule.refused == 0:
        problems.append(f"cnpg-ops never read {key}")
    if not r.error:
        if r.returncode not in (0, 1):
            problems.append(f"exit {r.returncode}, expected 0 or 1 (the catalog is still judged)")
        found = [f for f in r.json.get("findings", []) if f.get("id") == "backup-info-unreadable"]
        if not found:
            problems.append(f"no backup-info-unreadable finding; ids {[f.get('id') for f in r.json.get('findings', [])]}")
        elif not any(f"base/{b4['id']}/backup.info" in (f.get("subject", "") + " " + f.get("message", ""))
                     for f in found):
            problems.append(f"backup-info-unreadable does not name base/{b4['id']}/backup.info: {found}")
        statuses = {b.get("id"): b.get("status") for b in r.json.get("backups", [])}
        want = {b["id"]: b["status"] for b in facts["backups"] if b["id"] != b4["id"]}
        if {k: statuses.get(k) for k in want} != want:
            problems.append(f"the other backups changed: {statuses}, expected {want}")
        if statuses.get(b4["id"]) != "UNREADABLE_INFO":
            problems.append(f"B4 has status {statuses.get(b4['id'])}, expected UNREADABLE_INFO")
    results.check(f"403 on {key}: catalog show reports backup-info-unreadable naming it", not problems,
                  "; ".join(problems + [r.brief(300)]) if problems else f"exit {r.returncode}")

    proxy.clear()
    rule = proxy.add_rule(Rule(f"GET {key}: 403", deny, 403, "AccessDenied"))
    r = run_cli(binary, ["catalog", "check", facts["dest"], "--to", target, *common], env)
    problems = [r.error] if r.error else []
    if not r.error:
        if r.json.get("recoverable") is not True or r.returncode != 0:
            problems.append(f"recoverable={r.json.get('recoverable')}, exit {r.returncode}; "
                            f"reasons {r.json.get('reasons')}")
        if r.json.get("backup_id") != b2["id"]:
            problems.append(f"backup_id {r.json.get('backup_id')}, expected B2 {b2['id']}")
    if rule.refused == 0:
        problems.append(f"cnpg-ops never read {key}")
    results.check(f"403 on {key}: catalog check 1 ms after B4 ends is judged from B2 {b2['id']}",
                  not problems, "; ".join(problems + [r.brief(300)]) if problems else
                  f"reasons/caveats: {r.json.get('reasons')}")


# ----------------------------------------------------------------- (d) access errors


def check_access_errors(results: Results, binary: Path, settings: dict, facts: dict, timings: dict) -> None:
    endpoint = settings["endpoint_url"]
    dest = facts["dest"]
    server = ["--server-name", facts["server_name"]]
    wrong_secret = "0" * 64
    unknown_key = "GK" + "0" * 24
    cases = [
        ("wrong bucket", f"s3://no-such-bucket-cnpg-ops/{facts['prefix']}", endpoint, {},
         ("no such bucket",)),
        ("wrong secret key", dest, endpoint, {"AWS_SECRET_ACCESS_KEY": wrong_secret},
         ("not authenticated", "access denied")),
        ("unknown access key id", dest, endpoint, {"AWS_ACCESS_KEY_ID": unknown_key},
         ("not authenticated", "access denied")),
        ("nothing listening (http://127.0.0.1:1)", dest, "http://127.0.0.1:1", {}, ("connection refused",)),
        ("unresolvable host (no-such-host.invalid)", dest, "http://no-such-host.invalid:9000", {},
         ("DNS lookup failed",)),
    ]
    for name, d, ep, override, wanted in cases:
        r = run_cli(binary, ["catalog", "check", d, "--to", "latest", *server, "--endpoint-url", ep, "-o", "json"],
                    s3_env(**override), timeout=300)
        timings[f"access error: {name}"] = round(r.seconds, 1)
        problems = []
        if r.returncode != 3:
            problems.append(f"exit {r.returncode}, expected 3")
        if not any(w in r.stderr for w in wanted):
            problems.append(f"message says none of {list(wanted)}")
        problems += no_verdict(r)
        results.check(f"{name}: exit 3, message says {' or '.join(repr(w) for w in wanted)}", not problems,
                      "; ".join(problems + [r.brief(400)]) if problems else
                      f"{r.seconds:.1f}s; {r.stderr.strip().splitlines()[0][:160]}")


# ----------------------------------------------------------------------------- main


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workdir")
    ap.add_argument("--facts", help="facts.json of make_catalog.py (default: WORKDIR/facts.json)")
    ap.add_argument("--label", default="integration", help="name on the summary line")
    ap.add_argument("--counts", help="also write the counts to this JSON file (run.sh sums them)")
    args = ap.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    settings = load_env(args.workdir)
    facts = read_json(args.facts or settings["workdir"] / "facts.json")
    binary = cnpg_ops_binary()
    results = Results()
    timings: dict = {}
    started = time.monotonic()
    print()
    if not results.check("cnpg-ops binary exists", binary.is_file() and os.access(binary, os.X_OK), str(binary)):
        return results.summary(args.label, args.counts)
    host, port = settings["endpoint_url"].rsplit("//", 1)[1].split(":")
    proxy = FaultProxy(host, int(port)).start()
    try:
        log("(a)+(b) failing pages of the wals/ listing")
        check_pages(results, binary, proxy, settings, timings)
        log("(c) one unreadable backup.info")
        check_unreadable_info(results, binary, proxy, facts)
    finally:
        proxy.close()
    log("(d) access errors")
    check_access_errors(results, binary, settings, facts, timings)
    write_json(settings["workdir"] / "failures-timings.json", timings)
    print("\nseconds per run:")
    for name, secs in timings.items():
        print(f"  {secs:6.1f}  {name}")
    log(f"failures: {time.monotonic() - started:.0f}s in all")
    return results.summary(args.label, args.counts)


if __name__ == "__main__":
    sys.exit(main())
