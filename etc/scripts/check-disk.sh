#!/bin/sh
# A Nagios-compatible plugin: free space on a filesystem.
#   check-disk.sh [-w PCT] [-c PCT] [PATH]
# Exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN; the first output line is the reason.
warn=20 crit=10
while getopts w:c: opt; do
  case "$opt" in
    w) warn=${OPTARG%\%} ;;
    c) crit=${OPTARG%\%} ;;
    *) echo "UNKNOWN: usage: $0 [-w PCT] [-c PCT] [PATH]"; exit 3 ;;
  esac
done
shift $((OPTIND - 1))
path=${1:-/}
used=$(df -P "$path" 2>/dev/null | awk 'NR==2 { sub("%", "", $5); print $5 }')
[ -n "$used" ] || { echo "UNKNOWN: cannot read free space of $path"; exit 3; }
free=$((100 - used))
if [ "$free" -le "$crit" ]; then echo "CRITICAL: $path has $free% free"; exit 2; fi
if [ "$free" -le "$warn" ]; then echo "WARNING: $path has $free% free"; exit 1; fi
echo "OK: $path has $free% free"
