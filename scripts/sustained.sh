#!/bin/sh
# Sustained load against a fresh standalone chronik-server (make sustained):
# starts the server on free-ish loopback ports with its data in a temp dir,
# runs `chronik-server bench sustained` against it, and always stops the
# server and deletes the data, also on failure or Ctrl-C.
#
#   SUSTAINED_DURATION (10m)  SUSTAINED_RATE (100000)  SUSTAINED_SIZE (100)
#   SUSTAINED_SEGMENT_BYTES (134217728)  segment.bytes of the topic
#   SUSTAINED_ARGS            extra flags for `bench sustained`
#   SUSTAINED_PORT (19592)    Kafka port; metrics on SUSTAINED_PORT+1
set -eu
GO=${GO:-go}
port=${SUSTAINED_PORT:-19592}
metrics=$((port + 1))
dir=$(mktemp -d "${TMPDIR:-/tmp}/chronik-sustained-XXXXXX")
pid=""
cleanup() {
	if [ -n "$pid" ]; then kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; fi
	rm -rf "$dir"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
$GO build -o "$dir/chronik-server" ./cmd/chronik-server
CHRONIK_LOG_LEVEL=warn "$dir/chronik-server" --node-id 1 --advertised-addr "127.0.0.1:$port" \
	--data-dir "$dir/data" --metrics-addr "127.0.0.1:$metrics" standalone >"$dir/server.log" 2>&1 &
pid=$!
i=0
until curl -sf "http://127.0.0.1:$metrics/ready" >/dev/null 2>&1; do
	i=$((i + 1))
	if [ "$i" -gt 300 ] || ! kill -0 "$pid" 2>/dev/null; then
		echo "server did not become ready:" >&2; cat "$dir/server.log" >&2; exit 1
	fi
	sleep 0.1
done
# 128 MiB segments: the active segment's index lives in memory until the
# segment rolls, so RSS rises and falls with each segment; with the default
# 1 GiB a segment takes about 8 minutes to fill at 100K msg/s of 100 B and a
# 10-minute run would compare different points of one cycle.
# shellcheck disable=SC2086
"$dir/chronik-server" bench sustained --topic-config "segment.bytes=${SUSTAINED_SEGMENT_BYTES:-134217728}" --bootstrap "127.0.0.1:$port" --metrics-addrs "127.0.0.1:$metrics" \
	--duration "${SUSTAINED_DURATION:-10m}" --rate "${SUSTAINED_RATE:-100000}" --size "${SUSTAINED_SIZE:-100}" \
	${SUSTAINED_ARGS:-}
