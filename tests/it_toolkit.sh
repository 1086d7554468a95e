#!/usr/bin/env bash
# tests/it_toolkit.sh - the Python toolkit (toolkit/python, docs/toolkit.md)
# end to end, once per driver (tests/run.sh): installs the package with pip
# into a fresh virtual environment without a package index (as a user on
# an offline machine would), starts a stack with `cb up` on the suite's
# broker (with http accounts on a cbcore function server, which runs shipped
# code remotely), and runs tests/toolkit with Debian's python3-pytest
# against it; then examples/python/toolkit_demo.py on the same stack.
# Needs CB_TEST_BROKER_URL, CB_TEST_BIN; python3-venv, python3-pip,
# python3-cloudpickle, python3-pytest (tools/deps.sh).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CB="$CB_TEST_BIN/cb"
DIR=$(mktemp -d /tmp/cbtk.XXXXXX)
# the runtimes' interpreter and the client's: Debian's (python3-cloudpickle;
# a python3 earlier in PATH may not have it, or another version)
PY=/usr/bin/python3
export CB_DIR="$DIR/.cb" CB_LOG_LEVEL=error CB_PYTHON=$PY CB_NO_PROGRESS=1
unset CB_BROKER_URL CB_CONFIG CB_API_URL CB_TENANT
fails=0

FS_PID=
stop() {
    "$CB" down --dir "$CB_DIR" >/dev/null 2>&1
    [ -n "$FS_PID" ] && kill "$FS_PID" 2>/dev/null
    [ "$fails" -eq 0 ] && rm -rf "$DIR"
}
trap stop EXIT
trap 'exit 130' INT TERM

. "$ROOT/tests/lib.sh" # check

installed() {
    $PY -m venv --system-site-packages "$DIR/venv" &&
        "$DIR/venv/bin/pip" install --no-index --quiet "$ROOT/toolkit/python" &&
        "$DIR/venv/bin/python" -c 'import cbcore, sys; sys.exit(not cbcore.__file__.startswith(sys.argv[1]))' "$DIR/venv"
}
check "pip install ./toolkit/python (no package index)" installed
[ "$fails" -eq 0 ] || exit 1

# a remote backend that runs shipped code: the function server behind an
# http account (python3 -m cbcore.function_server, docs/toolkit.md)
mkdir -p "$CB_DIR/objects"
"$DIR/venv/bin/python" -m cbcore.function_server --port 0 --port-file "$DIR/fs.port" \
    --objects "$CB_DIR/objects" 2>"$DIR/fs.log" &
FS_PID=$!
for _ in $(seq 200); do [ -s "$DIR/fs.port" ] || ! kill -0 $FS_PID 2>/dev/null && break; sleep 0.05; done
if [ ! -s "$DIR/fs.port" ]; then echo "FAIL the function server did not start"; cat "$DIR/fs.log"; exit 1; fi
cat >"$DIR/cb.json" <<JSON
{"backends": {"local": {},
  "pyfaas": {"type": "http", "url": "http://127.0.0.1:$(cat "$DIR/fs.port")/", "shipped": true,
             "max_concurrency": 8},
  "pyfaas-ce": {"type": "http", "mode": "cloudevents", "url": "http://127.0.0.1:$(cat "$DIR/fs.port")/",
                "shipped": true, "max_concurrency": 4},
  "plainhttp": {"type": "http", "url": "http://127.0.0.1:$(cat "$DIR/fs.port")/{name}"}}}
JSON
export CB_TEST_SHIPPED_BACKENDS="pyfaas pyfaas-ce" CB_TEST_PLAIN_HTTP=plainhttp

if ! "$CB" up --detach --dir "$CB_DIR" --broker "$CB_TEST_BROKER_URL" --config "$DIR/cb.json" >"$DIR/up.out" 2>&1; then
    echo "FAIL cb up"; cat "$DIR/up.out"; exit 1
fi

pytest_suite() {
    (cd "$DIR" && "$DIR/venv/bin/python" -m pytest -q -p no:cacheprovider --durations=4 \
        "$ROOT/tests/toolkit" >"$DIR/pytest.out" 2>&1)
    local rc=$?
    tail -n 8 "$DIR/pytest.out"
    [ $rc -eq 0 ] || cat "$DIR/pytest.out"
    return $rc
}
check "tests/toolkit (pytest)" pytest_suite

demo() {
    (cd "$DIR" && "$DIR/venv/bin/python" "$ROOT/examples/python/toolkit_demo.py" >"$DIR/demo.out" 2>&1) || {
        cat "$DIR/demo.out"; return 1; }
    grep -qx 'map: \[8, 9, 10, 11\]' "$DIR/demo.out" &&
        grep -qx 'map_reduce: 38' "$DIR/demo.out" &&
        grep -q '^word count: ' "$DIR/demo.out" &&
        grep -q '^exception: ValueError' "$DIR/demo.out" &&
        grep -qx 'pipeline: \[80, 90, 100, 110\]' "$DIR/demo.out" || {
        cat "$DIR/demo.out"; return 1; }
}
check "examples/python/toolkit_demo.py" demo

# a map's progress bar when a terminal looks (script(1) gives the client one)
progress() {
    (cd "$DIR" && env -u CB_NO_PROGRESS script -qec "'$DIR/venv/bin/python' -c '
import cbcore
with cbcore.FunctionExecutor() as ex:
    print(\"sum\", sum(ex.get_result(ex.map(lambda x: x, range(300)))))
'" /dev/null >"$DIR/progress.out" 2>&1) || { cat "$DIR/progress.out"; return 1; }
    grep -q "sum 44850" "$DIR/progress.out" && grep -q "300/300" "$DIR/progress.out" || {
        cat "$DIR/progress.out"; return 1; }
}
check "a map shows its progress bar in a terminal (tqdm)" progress

# cb bench toolkit, a smoke run (tiny N; the figures are not checked, the
# JSON is), on a stack of its own: this one goes first (two stacks on one
# broker would share its work queues, not their storage)
"$CB" down --dir "$CB_DIR" >/dev/null 2>&1
bench() {
    CB_LOG_LEVEL=warn "$CB" bench toolkit --n 50 --runs 1 --broker "$CB_TEST_DRIVER" \
        --url "$CB_TEST_BROKER_URL" >"$DIR/bench.out" 2>"$DIR/bench.err" || {
        tail -n 20 "$DIR/bench.err"; return 1; }
    $PY -c 'import json,sys; d=json.load(open(sys.argv[1])); m=d["median"]["50"]; assert d["workload"]=="toolkit" and m["seconds"]>0 and m["calls_per_s"]>0 and len(d["per_run"])==1, d' "$DIR/bench.out"
}
check "cb bench toolkit prints its JSON" bench

[ "$fails" -eq 0 ]
