#!/usr/bin/env bash
# tools/demo.sh - what `make demo` runs: start the dev stack with a private
# nats-server, run the sample map_reduce job (Python add7 over 2..5, reduce
# sum -> 42), then a 10,000-item map with a progress bar and its throughput,
# stop the stack, and end with the first job's done message as one JSON line.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CB="$ROOT/build/bin/cb"
export CB_DIR="${CB_DIR:-$ROOT/.cb-demo}"

stop() { "$CB" down --dir "$CB_DIR" >/dev/null 2>&1 || true; }
trap stop EXIT

echo "== starting the dev stack (nats-server, cb-projector, cb-engine, cb-adapter) in $CB_DIR"
"$CB" down --dir "$CB_DIR" >/dev/null 2>&1 || true
"$CB" up --detach --dir "$CB_DIR" --config "$ROOT/examples/cb.json"

echo
echo "== map_reduce: add7 over [2, 3, 4, 5] in Python, then sum (examples/jobs/map_reduce.json)"
done_line=$("$CB" submit --wait --timeout 60 "$ROOT/examples/jobs/map_reduce.json" | tail -n 1)
job=$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["job_id"])' "$done_line")
echo "result: $("$CB" result "demo/$job")"

echo
echo "== map: add7 over range(10000), one invocation per item (examples/jobs/map_10k.json)"
big=$("$CB" submit "$ROOT/examples/jobs/map_10k.json")
"$CB" watch "demo/$big"

echo
echo "== replay: the first job's timeline from the event log"
"$CB" replay --job "demo/$job" --broker "$(cat "$CB_DIR/url")" | head -n 20

stop
trap - EXIT
echo
echo "== the map_reduce job's done message:"
echo "$done_line"
