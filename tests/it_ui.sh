#!/usr/bin/env bash
# tests/it_ui.sh - the dashboard in a real browser (run once per driver by
# tests/run.sh): `cb up --detach` on the given broker (it starts cb-api), a
# map of 1,000 tasks that runs a few seconds and a DAG job, then
# tests/ui_check.js drives headless Chromium (puppeteer-core) through the
# jobs page, the map's page (live to its end: the Gantt's bars), the DAG's
# page (its nodes), the backends page and a narrow screen, with a
# screenshot of each in BUILD/test-output/ui-DRIVER/. The static files'
# headers are checked with curl first.
# Needs CB_TEST_BROKER_URL, CB_TEST_BIN; chromium (tools/deps.sh) and
# tests/peers' node_modules (npm ci, tests/run.sh).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CB="$CB_TEST_BIN/cb"
DIR=$(mktemp -d /tmp/cbui.XXXXXX)
OUT="$(dirname "$CB_TEST_BIN")/test-output/ui-${CB_TEST_DRIVER:-nats}"
export CB_DIR="$DIR/.cb" CB_LOG_LEVEL=error CB_STATS_MS=1000
unset CB_BROKER_URL
fails=0
T="ui$$"

stop() {
    "$CB" down --dir "$CB_DIR" >/dev/null 2>&1
    [ "$fails" -eq 0 ] && rm -rf "$DIR"
}
trap stop EXIT
trap 'exit 130' INT TERM

. "$ROOT/tests/lib.sh" # check

if [ ! -x /usr/bin/chromium ] || [ ! -d "$ROOT/tests/peers/node_modules/puppeteer-core" ]; then
    echo "FAIL chromium (tools/deps.sh) or puppeteer-core (npm ci in tests/peers) is missing"
    exit 1
fi
if ! "$CB" up --detach --dir "$CB_DIR" --broker "$CB_TEST_BROKER_URL" \
    --config "$ROOT/tests/fixtures/functions.json" >"$DIR/up.out" 2>&1; then
    echo "FAIL cb up"; cat "$DIR/up.out"; exit 1
fi
BASE=$(cat "$CB_DIR/api_url")
rm -rf "$OUT"
mkdir -p "$OUT"

check "GET / is the dashboard (text/html, a script of its own only)" \
    bash -c "curl -s -D - '$BASE/' | grep -qi '^Content-Type: text/html' && curl -s '$BASE/' | grep -q 'src=\"/ui/app.js\"'"
check "its files forbid anything from elsewhere (Content-Security-Policy: default-src 'self')" \
    bash -c "curl -s -D - -o /dev/null '$BASE/ui/app.js' | grep -qi \"^Content-Security-Policy: default-src 'self'\""
check "an unknown file is 404" test "$(curl -s -o /dev/null -w '%{http_code}' "$BASE/ui/nothing.js")" = 404

# a map of 1,000 tasks of 200 ms, 25 at a time: about 8 s, long enough to
# see it running; a DAG whose last step is skipped by its condition
/usr/bin/python3 - "$T" >"$DIR/map.json" <<'PY'
import json, sys
print(json.dumps({"tenant": sys.argv[1], "job_id": "map1000", "kind": "map", "parallelism": 25,
                  "function": {"backend": "local", "name": "sleep_ms"},
                  "input": {"items": [{"ms": 200} for _ in range(1000)]}}))
PY
job() { sed "s/TENANT/$T/g" >"$DIR/$1"; }
job dag.json <<'J'
{"tenant": "TENANT", "job_id": "diamond", "kind": "dag", "tasks": {
 "A": {"function": {"backend": "local", "name": "echo"}, "input": 1},
 "B": {"function": {"backend": "local", "name": "add7"}, "input_from": "A"},
 "C": {"function": {"backend": "local", "name": "add7"}, "input_from": "A"},
 "D": {"function": {"backend": "local", "name": "sum"}, "input_from": ["B", "C"],
       "when": {"step": "B", "op": "gt", "value": 100}}}}
J
# an agreement every job of the tenant breaks, for the agreements pages
# (cb-sla answers once it has read the log: asked again until it does)
sla_created() {
    test "$(curl -s -o /dev/null -w '%{http_code}' --max-time 40 -X POST -H 'Content-Type: application/json' \
        -d '{"id": "quick", "name": "jobs under 1 ms", "details": {"id": "quick", "type": "agreement", "name": "quick", "guarantees": [{"name": "makespan", "constraint": "[makespan] < 1"}]}}' \
        "$BASE/v1/tenants/$T/slas")" = 201
}
for _ in $(seq 1 5); do sla_created && break; done
check "an agreement for the tenant (POST /v1/tenants/T/slas)" sla_created
"$CB" submit "$DIR/dag.json" >/dev/null
check "the DAG job ends, its last step skipped" test "$("$CB" result --timeout 60 "$T/diamond")" = '{"D":null}'
# The pages read the store. A fresh stack's projector folds the whole log
# of the broker first (in make test, every earlier test's events): wait
# (120 s at most) until the store has the DAG's end, so that it has caught
# up, then submit the map and wait until the store shows it running.
PY=/usr/bin/python3
state() { curl -s --max-time 5 "$BASE/v1/jobs/$T/$1" | $PY -c 'import json,sys; print(json.load(sys.stdin).get("status",""))' 2>/dev/null; }
for _ in $(seq 1 1200); do [ "$(state diamond)" = succeeded ] && break; sleep 0.1; done
check "the store has caught up with the log (the DAG's end)" test "$(state diamond)" = succeeded
"$CB" submit "$DIR/map.json" >/dev/null
for _ in $(seq 1 300); do [ "$(state map1000)" = running ] && break; sleep 0.05; done
check "the store shows the map running" test "$(state map1000)" = running
node "$ROOT/tests/ui_check.js" "$BASE" "$T" map1000 diamond "$OUT" || fails=$((fails + 1))
check "screenshots saved in $OUT" bash -c "ls '$OUT'/jobs.png '$OUT'/job-map.png '$OUT'/job-dag.png '$OUT'/backends.png '$OUT'/jobs-narrow.png '$OUT'/slas.png '$OUT'/sla.png >/dev/null"

if [ $fails -eq 0 ]; then echo "all checks passed"; else
    echo "$fails checks failed"
    echo "--- cb-api log:"; tail -20 "$CB_DIR/logs/api.log"
    exit 1
fi
