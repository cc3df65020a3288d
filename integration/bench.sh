#!/usr/bin/env bash
# How fast cnpg-ops knows what a bucket can restore, against the barman-cloud tools doing
# comparable listing work and the fastest plain parallel listing of the same keys.
#
#   integration/bench.sh [SIZE ...]        default sizes: 10000 100000 1000000 WAL objects
#
# For each size, examples/gen_catalog writes a synthetic, format-correct catalog into Garage
# on 127.0.0.1 (two timelines, a history file, one DONE backup per 5000 segments with a real-
# looking backup.info), then each tool runs on the same bucket, measured by /usr/bin/time
# (wall time, peak resident memory):
#
#   cnpg-ops show        cnpg-ops catalog show -o json (lists, analyses, reads the newest
#                        windows' ends from the WAL: the synthetic segments are empty, so
#                        those reads fail fast and are reported)
#   raw listing          examples/raw_list: one delimiter listing, then contiguous key ranges
#                        listed in parallel with full pages, the keys only counted
#   check-wal-archive    barman-cloud-check-wal-archive --timeline 99: walks every WAL object
#   backup-delete        barman-cloud-backup-delete --dry-run -r 'RECOVERY WINDOW OF 7 DAYS':
#                        walks every WAL object and every backup
#   backup-list          barman-cloud-backup-list: the base backups only
#
# The table gives the median of BENCH_RUNS runs (default 3; barman-cloud at the largest size:
# BENCH_BARMAN_RUNS, default 1), the ratio of each barman-cloud tool to cnpg-ops, and of
# cnpg-ops to the raw listing. Everything runs on this machine: the server competes with the
# client for the same cores.
#
# A run that takes longer than BENCH_TIMEOUT seconds (default 900) is stopped and shown as
# "> BENCH_TIMEOUT s": barman-cloud-backup-delete grows faster than linearly.
#
# Variables: BENCH_RUNS, BENCH_BARMAN_RUNS, BENCH_TIMEOUT, BENCH_CONCURRENCY (cnpg-ops and raw,
# default 16), BENCH_WORKDIR (default: a new directory under /tmp, removed at the end),
# CNPG_OPS_CACHE.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(dirname "$HERE")"
SIZES=("$@")
[ "${#SIZES[@]}" -gt 0 ] || SIZES=(10000 100000 1000000)
RUNS="${BENCH_RUNS:-3}"
BARMAN_RUNS="${BENCH_BARMAN_RUNS:-1}"
CONC="${BENCH_CONCURRENCY:-16}"
LIMIT="${BENCH_TIMEOUT:-900}"
CACHE="${CNPG_OPS_CACHE:-$HOME/.cache/cnpg-ops}"
W="${BENCH_WORKDIR:-$(mktemp -d /tmp/cnpg-ops-bench.XXXXXX)}"
V="$CACHE/venv/bin"
[ -x /usr/bin/time ] || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }

cleanup() {
  "$HERE/setup.sh" stop "$W" >/dev/null 2>&1 || true
  [ -n "${BENCH_WORKDIR:-}" ] || rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

"$HERE/setup.sh" up "$W" >&2
# shellcheck source=/dev/null
. "$W/env.sh"
export AWS_ENDPOINT_URL="$S3_ENDPOINT_URL"
export CNPG_OPS_CACHE_DIR=""   # every run reads what it judges
(cd "$REPO" && cargo build --release --locked --bins --examples >&2)
BIN="$REPO/target/release"
DEST=s3://cnpg-backups/bench
RESULTS="$W/results.tsv"
: >"$RESULTS"

# measure SIZE TOOL RUNS COMMAND...: appends "size tool wall_s peak_kb" per run.
measure() {
  local size=$1 tool=$2 runs=$3
  shift 3
  local i
  for ((i = 1; i <= runs; i++)); do
    : >"$W/time"
    local rc=0
    timeout "$LIMIT" /usr/bin/time -f "%e %M" -o "$W/time" "$@" >"$W/out" 2>"$W/err" || rc=$?
    if [ "$rc" = 124 ]; then
      printf '%s\t%s\t%s\t%s\n' "$size" "$tool" "timeout" "0" >>"$RESULTS"
      printf 'bench: %-8s %-18s run %d: stopped after %s s\n' "$size" "$tool" "$i" "$LIMIT" >&2
      return 0
    fi
    if [ "$rc" != 0 ]; then
      # barman-cloud-check-wal-archive exits 1 on a non-empty archive when asked to; a
      # tool that fails otherwise is reported, not timed.
      if ! grep -q . "$W/time"; then
        echo "bench: $tool failed at $size: $(tail -n 2 "$W/err")" >&2
        return 0
      fi
    fi
    local wall kb
    # The last line is "WALL KB" (a failing command adds a line before it).
    read -r wall kb < <(tail -n 1 "$W/time")
    printf '%s\t%s\t%s\t%s\n' "$size" "$tool" "$wall" "$kb" >>"$RESULTS"
    printf 'bench: %-8s %-18s run %d: %s s, %s KB\n' "$size" "$tool" "$i" "$wall" "$kb" >&2
  done
}

for size in "${SIZES[@]}"; do
  server="pg-$size"
  echo "bench: writing $size WAL objects" >&2
  "$BIN/examples/gen_catalog" "$DEST" "$server" "$size" 2 2>&1 | tail -n 1 >&2
  barman_runs=$RUNS
  [ "$size" != "${SIZES[-1]}" ] || barman_runs=$BARMAN_RUNS
  measure "$size" "cnpg-ops show" "$RUNS" \
    "$BIN/cnpg-ops" catalog show "$DEST" --server-name "$server" --concurrency "$CONC" -o json
  measure "$size" "raw listing" "$RUNS" "$BIN/examples/raw_list" "$DEST" "$server" "$CONC"
  measure "$size" "check-wal-archive" "$barman_runs" \
    "$V/barman-cloud-check-wal-archive" --endpoint-url "$S3_ENDPOINT_URL" --timeline 99 "$DEST" "$server"
  measure "$size" "backup-delete" "$barman_runs" \
    "$V/barman-cloud-backup-delete" --endpoint-url "$S3_ENDPOINT_URL" --dry-run \
    -r "RECOVERY WINDOW OF 7 DAYS" "$DEST" "$server"
  measure "$size" "backup-list" "$barman_runs" \
    "$V/barman-cloud-backup-list" --endpoint-url "$S3_ENDPOINT_URL" "$DEST" "$server"
done

python3 - "$RESULTS" "$(nproc)" "$LIMIT" <<'EOF'
import statistics, sys
from collections import defaultdict
runs = defaultdict(list)
for line in open(sys.argv[1]):
    size, tool, wall, kb = line.rstrip("\n").split("\t")
    runs[(int(size), tool)].append((float("inf") if wall == "timeout" else float(wall), int(kb)))
tools = ["cnpg-ops show", "raw listing", "check-wal-archive", "backup-delete", "backup-list"]
print(f"\nGarage on 127.0.0.1, client and server on the same {sys.argv[2]} cores; median of the runs.\n")
print("| WAL objects | tool | runs | wall time | peak memory | time ÷ cnpg-ops | µs per object |")
print("|---:|---|---:|---:|---:|---:|---:|")
for size in sorted({s for s, _ in runs}):
    base = runs.get((size, "cnpg-ops show"))
    base_t = statistics.median(w for w, _ in base) if base else None
    for tool in tools:
        r = runs.get((size, tool))
        if not r:
            print(f"| {size:,} | {tool} | 0 | failed | | | |")
            continue
        t = statistics.median(w for w, _ in r)
        if t == float("inf"):
            limit = float(sys.argv[3])
            ratio = f"> {limit / base_t:.0f}" if base_t else ""
            print(f"| {size:,} | {tool} | {len(r)} | > {limit:.0f} s (stopped) | | {ratio} | > {limit / size * 1e6:.0f} |")
            continue
        mb = max(k for _, k in r) / 1024
        ratio = f"{t / base_t:.2f}" if base_t else ""
        print(f"| {size:,} | {tool} | {len(r)} | {t:.2f} s | {mb:.0f} MB | {ratio} | {t / size * 1e6:.1f} |")
EOF
