#!/usr/bin/env bash
# Writes each approach's exposition for a small fleet to $OUT (default
# /tmp/vitals-metrics-libraries) and runs `promtool check metrics` on each.
# Prints promtool's findings, then compares the series of each library
# exposition with the hand-written one (labels sorted, values and `le` read
# as numbers). Asserts nothing.
set -euo pipefail

cd "$(dirname "$0")"
N=${N:-50}
OUT=${OUT:-/tmp/vitals-metrics-libraries}
SCRATCH=${SCRATCH:-.build-metrics}
command -v promtool >/dev/null || { echo "promtool not found (Debian: apt-get install -y prometheus)" >&2; exit 1; }

swift build -c release --scratch-path "$SCRATCH" >&2
mkdir -p "$OUT"
for mode in hand metrics prometheus; do
    "$SCRATCH/release/MetricsLibrariesBench" --mode "$mode" --services "$N" --results 100000 --dump >"$OUT/$mode.txt"
    echo "== $mode: $(wc -l <"$OUT/$mode.txt") lines, $(wc -c <"$OUT/$mode.txt") bytes ($OUT/$mode.txt)"
    if promtool check metrics <"$OUT/$mode.txt" >"$OUT/$mode.promtool" 2>&1; then status=0; else status=$?; fi
    echo "promtool exit $status, $(wc -l <"$OUT/$mode.promtool") findings; by kind:"
    sed -E 's/^[a-z_]+ //' "$OUT/$mode.promtool" | sort | uniq -c | sort -rn | head -n 10
done

command -v python3 >/dev/null || exit 0
for mode in metrics prometheus; do
    echo "== series of $mode against hand"
    python3 - "$OUT/hand.txt" "$OUT/$mode.txt" <<'PY'
import re, sys
sample = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
label = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')
def series(path):
    out = {}
    for line in open(path):
        m = sample.match(line.rstrip("\n"))
        if not m or line.startswith("#"): continue
        labels = dict(label.findall(m.group(2) or ""))
        if "le" in labels: labels["le"] = str(float(labels["le"]))
        out[(m.group(1), tuple(sorted(labels.items())))] = float(m.group(3))
    return out
hand, lib = series(sys.argv[1]), series(sys.argv[2])
differ = [k for k in hand.keys() & lib.keys() if abs(hand[k] - lib[k]) > 1e-6 * max(1, abs(hand[k]))]
print(f"{len(hand)} series in hand, {len(lib)} in library, {len(hand.keys() - lib.keys())} only in hand, "
      f"{len(lib.keys() - hand.keys())} only in library, {len(differ)} with different values")
for k in sorted(differ)[:5]: print("  differs:", k, hand[k], lib[k])
PY
done
