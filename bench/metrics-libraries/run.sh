#!/usr/bin/env bash
# Builds this package in release mode and measures, for each size, the
# agent's hand-written /metrics against swift-metrics over swift-prometheus,
# each approach in its own process. Prints one table; asserts nothing.
#
#   bench/metrics-libraries/run.sh               # 1,000 and 10,000 services
#   SIZES=1000 bench/metrics-libraries/run.sh    # quick
#   FULL=1 bench/metrics-libraries/run.sh        # also swift-prometheus direct at 10,000
#
# At 10,000 services a library process spends minutes registering its
# series (see README.md), so by default the direct swift-prometheus API,
# which registers the same way, is measured at 1,000 only.
set -euo pipefail

cd "$(dirname "$0")"
SIZES=${SIZES:-"1000 10000"}
RESULTS=${RESULTS:-1000000}
RENDERS=${RENDERS:-20}
FULL=${FULL:-0}
SCRATCH=${SCRATCH:-.build-metrics}

swift build -c release --scratch-path "$SCRATCH" >&2
bin="$SCRATCH/release/MetricsLibrariesBench"

out=$(mktemp)
trap 'rm -f "$out"' EXIT
"$bin" --header >"$out"
echo "load average before: $(cat /proc/loadavg)" >&2
for n in $SIZES; do
    modes="hand metrics prometheus"
    if [[ $n -gt 1000 && $FULL != 1 ]]; then modes="hand metrics"; fi
    for mode in $modes; do
        echo "measuring $mode at $n services" >&2
        # One benchmark at a time on this machine.
        flock /tmp/vitals-bench.lock \
            "$bin" --mode "$mode" --services "$n" --results "$RESULTS" --renders "$RENDERS" >>"$out"
    done
done
echo "load average after: $(cat /proc/loadavg)" >&2

# Every column with RAW=1 (wall-clock times, baseline RSS, RSS after rendering), then the summary.
if [[ ${RAW:-0} == 1 ]]; then column -t -s $'\t' "$out"; echo; fi
awk -F'\t' '
NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i
          print "N", "approach", "ns/record", "ns/record(naive)", "ns/state-change", "render_ms", "render_bytes",
                "RSS_MB", "heap_MB", "setup_s"; next }
{ print $col["services"], $col["approach"], $col["ns_per_record"], $col["ns_per_record_naive"],
        $col["ns_per_state_change"], $col["render_ms"], $col["render_bytes"], $col["rss_added_mb"],
        $col["heap_added_mb"], sprintf("%.1f", $col["setup_ms"] / 1000) }
' OFS='\t' "$out" | column -t -s $'\t'
