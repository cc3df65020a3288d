#!/usr/bin/env bash
# Runs every fuzz target for N seconds (default 30), seeded from the captured real catalog.
set -euo pipefail
cd "$(dirname "$0")"
secs="${1:-30}"
export RUSTC_BOOTSTRAP=1
fixture=../tests/fixtures/pg-main/objects
mkdir -p corpus/backup_info corpus/history corpus/object_names corpus/py_literal corpus/yaml_edit corpus/walread
i=0; for f in $(find "$fixture" -name backup.info); do i=$((i+1)); cp "$f" "corpus/backup_info/seed$i"; done
python3 -c "import json,sys;sys.stdout.write(json.load(open('../tests/fixtures/pg-main/facts.json'))['timeline_switch']['history_content'])" > corpus/history/captured
printf '1\t0/5A0000A0\tno recovery target specified\n2\t3/98000120\tno recovery target specified\n' > corpus/history/reference
(cd ../tests/fixtures/pg-main && python3 -c "import json;[print(o['key']) for o in json.load(open('manifest.json'))['objects']]") | while read -r k; do
  printf '%s' "${k#cluster/pg-main/}" > "corpus/object_names/$(echo "$k" | md5sum | cut -c1-12)"
done
grep -h '^copy_stats=\|^tablespaces=\|^backup_label=' corpus/backup_info/* | cut -d= -f2- | while read -r v; do
  printf '%s' "$v" > "corpus/py_literal/$(echo "$v" | md5sum | cut -c1-12)"
done
find ../tests/fixtures/repos -name '*.yaml' | while read -r f; do
  cp "$f" "corpus/yaml_edit/$(echo "$f" | md5sum | cut -c1-12)"
done
# Real WAL: the first 64 KiB of each fixture segment (its first pages, with records).
for f in ../tests/fixtures/wal/*.gz; do
  { gzip -dc "$f" 2>/dev/null || true; } | head -c 65536 > "corpus/walread/$(basename "$f" .gz)"
done
for t in backup_info history object_names py_literal yaml_edit walread; do
  cargo fuzz run "$t" "corpus/$t" -- -max_total_time="$secs" -max_len=65536
done
