#!/usr/bin/env bash
# Installs what building and testing Vitals needs, only when it is missing.
#   scripts/install-deps.sh            build and run dependencies (libcurl and SQLite headers, tzdata)
#   scripts/install-deps.sh test       + what the integration tests start or check with (openssl, redis-server, haproxy, promtool, systemd-analyze, chromium, etcd, iproute2)
#   scripts/install-deps.sh bench      + the benchmark's peers (nginx, wrk)
set -euo pipefail

want=()
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
need() { for p in "$@"; do have_pkg "$p" || want+=("$p"); done; }

command -v pkg-config >/dev/null || want+=(pkg-config)
pkg-config --exists libcurl 2>/dev/null || need libcurl4-openssl-dev
# The history store (history.sqlite): SQLite's C API, through the CSQLite system-library target.
pkg-config --exists sqlite3 2>/dev/null || need libsqlite3-dev
# Heartbeat schedules name time zones (tz: Europe/Berlin): Foundation reads them from /usr/share/zoneinfo.
[ -e /usr/share/zoneinfo/UTC ] || need tzdata
for extra in "$@"; do
  case "$extra" in
    test)  need openssl ca-certificates redis-server systemd haproxy prometheus chromium etcd-server iproute2 ;;   # iproute2: the cluster test that cuts one agent off in a network namespace; openssl: s_server and the test certificates of the tls: checks; redis-server: the send/expect tests start their own on a free port (on a systemd host Debian's redis-server.service takes 6379, unused here); systemd: systemd-analyze verify, systemd-sysusers; haproxy: the test runs its own (Debian's default service binds no port); prometheus: promtool check metrics (on a systemd host its service starts on :9090, unused here); chromium: the status page tests (headless, over DevTools); etcd-server: the cluster client tests start their own members on other ports (on a systemd host Debian's etcd.service takes 2379, unused here)
    bench) need nginx-light wrk ;;
    *) echo "install-deps: unknown set '$extra' (use: test, bench)" >&2; exit 2 ;;
  esac
done

[ ${#want[@]} -eq 0 ] && exit 0

echo "install-deps: installing ${want[*]}" >&2
if ! command -v apt-get >/dev/null; then
  echo "install-deps: need ${want[*]} but apt-get is not available; install them by hand" >&2
  exit 1
fi
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
# A mirror can fail for a moment: try three times before giving up.
for attempt in 1 2 3; do
  if $SUDO apt-get update -qq && $SUDO apt-get install -y -qq --no-install-recommends "${want[@]}" >/dev/null; then
    exit 0
  fi
  echo "install-deps: apt-get failed (attempt $attempt of 3)" >&2
  sleep $((attempt * 5))
done
echo "install-deps: could not install ${want[*]}" >&2
exit 1
