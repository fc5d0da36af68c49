#!/usr/bin/env bash
# Fuzzes the HTTP request parser (VitalsHTTP.HTTPRequestParser) with libFuzzer
# and AddressSanitizer.
#
#   scripts/fuzz.sh              # 30 seconds
#   scripts/fuzz.sh 600          # ten minutes
#   scripts/fuzz.sh 30 -jobs=2   # extra flags go to libFuzzer
#
# The corpus lives in fuzz-corpus/http-parser (git-ignored) and grows across
# runs; crashes are written to fuzz-corpus/artifacts/. Replay one without
# sanitizers through the plain build: swift run VitalsHTTPFuzz <file>.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-30}"
shift || true

# --sanitize=fuzzer links libFuzzer but (Swift 6.3.1) instruments only C
# targets: without -sanitize-coverage the Swift parser has no coverage
# counters and libFuzzer mutates blind ("4 inline 8-bit counters").
# VITALS_FUZZING leaves out the fuzz target's plain-build @main, since
# libFuzzer supplies main.
build=(swift build -c release --product VitalsHTTPFuzz
       --sanitize=fuzzer --sanitize=address --scratch-path .build-fuzz
       -Xswiftc -sanitize-coverage=edge,inline-8bit-counters,pc-table,trace-cmp
       -Xswiftc -DVITALS_FUZZING)
"${build[@]}"
binary="$("${build[@]}" --show-bin-path)/VitalsHTTPFuzz"

corpus=fuzz-corpus/http-parser
artifacts=fuzz-corpus/artifacts
mkdir -p "$corpus" "$artifacts"

# Seed corpus: valid requests of each shape, and one of each rejection.
seed() { printf '%b' "$2" > "$corpus/seed-$1"; }
seed get             'GET /v1/status HTTP/1.1\r\nHost: localhost\r\n\r\n'
seed head            'HEAD /v1/status?verbose=1&x=a+b HTTP/1.1\r\nHost: h\r\nAccept: */*\r\n\r\n'
seed post-body       'POST /v1/heartbeat/web HTTP/1.1\r\nHost: h\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{"ok":true}'
seed pipelined       'GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n'
seed http10          'GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n'
seed expect          'PUT /x HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\nabc'
seed percent         'GET /v1/services/web%20a/caf%C3%A9/%2F?q=%41+b HTTP/1.1\r\nHost: h\r\n\r\n'
seed absolute        'GET http://example.com:8080/v1/status HTTP/1.1\r\nHost: example.com\r\n\r\n'
seed options         'OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n'
seed leading-crlf    '\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n'
seed chunked         'POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n'
seed cl-conflict     'POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello'
seed cl-list         'POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2, 2\r\n\r\nok'
seed bad-percent     'GET /a%zz HTTP/1.1\r\nHost: h\r\n\r\n'
seed bare-lf         'GET / HTTP/1.1\nHost: h\n\n'
seed obs-fold        'GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n b\r\n\r\n'
seed version         'GET / HTTP/2.0\r\nHost: h\r\n\r\n'
seed no-host         'GET / HTTP/1.1\r\n\r\n'

dictionary=fuzz-corpus/http.dict
cat > "$dictionary" <<'DICT'
"GET"
"HEAD"
"POST"
"PUT"
"DELETE"
"OPTIONS"
"CONNECT"
" HTTP/1.1\x0d\x0a"
" HTTP/1.0\x0d\x0a"
"\x0d\x0a"
"\x0d\x0a\x0d\x0a"
"Host: "
"Content-Length: "
"Transfer-Encoding: chunked"
"Expect: 100-continue"
"Connection: close"
"Connection: keep-alive"
"%2F"
"%00"
"%C3%A9"
"http://"
"?a=b&c"
DICT

# The Swift backtracer would catch the crash signal before libFuzzer can
# report it and save the input.
export SWIFT_BACKTRACE=enable=no
exec "$binary" "$corpus" \
    -dict="$dictionary" \
    -max_total_time="$seconds" \
    -max_len=4096 \
    -timeout=10 \
    -artifact_prefix="$artifacts/" \
    -print_final_stats=1 \
    "$@"
