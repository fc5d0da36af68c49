#!/bin/sh
# Example failover action. Vitals runs it directly (no shell in between) with the
# event in its environment and as JSON on stdin:
#   VITALS_EVENT VITALS_GROUP VITALS_SERVICE VITALS_FROM VITALS_TO VITALS_REASON
#   VITALS_EVENT_ID VITALS_TIME
# Exit 0 for success; anything else is recorded as a failure (and retried when
# the action sets `retries`). Output is captured and kept with the event.
set -eu
echo "promote: group=${VITALS_GROUP:-?} ${VITALS_FROM:-none} -> ${VITALS_TO:-none} (${VITALS_REASON:-})"
# Real work goes here, e.g. move a virtual IP or repoint a DNS record:
#   ip addr add 192.0.2.10/24 dev eth0 ; arping -U -c 3 -I eth0 192.0.2.10
