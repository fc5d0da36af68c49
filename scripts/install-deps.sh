#!/usr/bin/env bash
# Installs what building and testing Vitals needs, only when it is missing.
#   scripts/install-deps.sh            build and run dependencies (libcurl, c-ares and SQLite headers, tzdata)
#   scripts/install-deps.sh test       + what the integration tests start or check with (openssl, redis-server, haproxy, promtool, systemd-analyze, chromium, etcd, iproute2, dnsmasq, python3-dnslib; grpcio in .build/peers-venv, aiosmtpd in .build/test-python)
#   scripts/install-deps.sh bench      + the benchmark's peers (nginx, wrk)
set -euo pipefail

want=()
have_pkg() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
need() { for p in "$@"; do have_pkg "$p" || want+=("$p"); done; }

command -v pkg-config >/dev/null || want+=(pkg-config)
pkg-config --exists libcurl 2>/dev/null || need libcurl4-openssl-dev
# dns: checks go through c-ares, on the probe loop.
pkg-config --exists libcares 2>/dev/null || need libc-ares-dev
# The history store (history.sqlite): SQLite's C API, through the CSQLite system-library target.
pkg-config --exists sqlite3 2>/dev/null || need libsqlite3-dev
# Heartbeat schedules name time zones (tz: Europe/Berlin): Foundation reads them from /usr/share/zoneinfo.
[ -e /usr/share/zoneinfo/UTC ] || need tzdata
for extra in "$@"; do
  case "$extra" in
    test)  need python3 openssl ca-certificates redis-server systemd haproxy prometheus chromium etcd-server iproute2 dnsmasq-base python3-dnslib python3-venv ;;   # python3-venv: the venv for the gRPC test server (grpcio); iproute2: the cluster test that cuts one agent off in a network namespace; openssl: s_server and the test certificates of the tls: checks; redis-server: the send/expect tests start their own on a free port (on a systemd host Debian's redis-server.service takes 6379, unused here); systemd: systemd-analyze verify, systemd-sysusers; haproxy: the test runs its own (Debian's default service binds no port); prometheus: promtool check metrics (on a systemd host its service starts on :9090, unused here); chromium: the status page tests (headless, over DevTools); etcd-server: the cluster client tests start their own members on other ports (on a systemd host Debian's etcd.service takes 2379, unused here); dnsmasq-base (the binary, without Debian's service) and python3-dnslib (for Debian's /usr/bin/python3): the dns: check tests start their own servers on loopback ports
    bench) need nginx-light wrk ;;
    *) echo "install-deps: unknown set '$extra' (use: test, bench)" >&2; exit 2 ;;
  esac
done

# The gRPC check tests start a Python gRPC health server of their own: grpcio and
# grpcio-health-checking from PyPI, in a venv under .build (never the system's Python).
peers_venv() {
  local venv="$(cd "$(dirname "$0")/.." && pwd)/.build/peers-venv"
  "$venv/bin/python" -c 'import grpc, grpc_health.v1.health' 2>/dev/null && return 0
  command -v python3 >/dev/null || { echo "install-deps: python3 is missing; the gRPC check tests will be skipped" >&2; return 0; }
  echo "install-deps: installing grpcio and grpcio-health-checking into $venv" >&2
  python3 -m venv "$venv" && "$venv/bin/pip" install -q grpcio grpcio-health-checking \
    || echo "install-deps: could not install grpcio; the gRPC check tests will be skipped" >&2
}
# The e-mail tests run a real SMTP server, Python's aiosmtpd, from a virtual
# environment of their own under .build (nothing is installed system-wide).
python_test_env() {
  local root venv
  root="$(cd "$(dirname "$0")/.." && pwd)"
  venv="$root/.build/test-python"
  "$venv/bin/python3" -c 'import aiosmtpd' 2>/dev/null && return 0
  echo "install-deps: making $venv with aiosmtpd" >&2
  python3 -m venv "$venv" && "$venv/bin/pip" install -q aiosmtpd ||
    echo "install-deps: could not install aiosmtpd; the e-mail tests will be skipped" >&2
}

finish() {
  for extra in "$@"; do
    if [ "$extra" = test ]; then
      command -v python3 >/dev/null || { echo "install-deps: no python3; the e-mail tests will be skipped" >&2; return 0; }
      python3 -m venv --help >/dev/null 2>&1 || { echo "install-deps: no python3 venv module (apt-get install python3-venv); the e-mail tests will be skipped" >&2; return 0; }
      python_test_env
      peers_venv
    fi
  done
  return 0
}

[ ${#want[@]} -eq 0 ] && { finish "$@"; exit 0; }

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
    finish "$@"
    exit 0
  fi
  echo "install-deps: apt-get failed (attempt $attempt of 3)" >&2
  sleep $((attempt * 5))
done
echo "install-deps: could not install ${want[*]}" >&2
exit 1
