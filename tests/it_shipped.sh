#!/usr/bin/env bash
# tests/it_shipped.sh - shipped functions on the local backend (docs/toolkit.md;
# run once per driver by tests/run.sh): functions made in this script's
# Python (a lambda, a closure, one returning a set, one raising) are
# cloudpickled, stored content addressed with `cb storage put`, and named by
# jobs through their reference; the local backend's "python" runtime reads,
# checks, unpickles and runs them. Also: a result JSON cannot carry comes
# back pickled; the remote exception and traceback; a Python version
# mismatch, a reference whose sha256 does not match and bytes that are no
# function are the task's clear error; the intake refuses code on another
# runtime and the runtime without code.
# Needs CB_TEST_BROKER_URL, CB_TEST_BIN; Debian's python3-cloudpickle.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CB="$CB_TEST_BIN/cb"
DIR=$(mktemp -d /tmp/cbship.XXXXXX)
# the runtimes' interpreter: Debian's, which has python3-cloudpickle (a
# python3 earlier in PATH may not)
export CB_DIR="$DIR/.cb" CB_LOG_LEVEL=error CB_PYTHON=/usr/bin/python3
unset CB_BROKER_URL CB_CONFIG
fails=0
T="ship$$"
PY=/usr/bin/python3
HERE=$($PY -c 'import sys; print("%d.%d" % sys.version_info[:2])')

stop() {
    "$CB" down --dir "$CB_DIR" >/dev/null 2>&1
    [ "$fails" -eq 0 ] && rm -rf "$DIR"
}
trap stop EXIT
trap 'exit 130' INT TERM

. "$ROOT/tests/lib.sh" # check

if ! $PY -c 'import cloudpickle' 2>/dev/null; then
    echo "FAIL python3-cloudpickle is missing (tools/deps.sh)"
    exit 1
fi
if ! "$CB" up --detach --dir "$CB_DIR" --broker "$CB_TEST_BROKER_URL" >"$DIR/up.out" 2>&1; then
    echo "FAIL cb up"; cat "$DIR/up.out"; exit 1
fi

# ship NAME PYTHON-EXPRESSION: cloudpickle the expression's value, store it
# as s3://cbcore/code/<sha256>.pkl; its reference (JSON) in $DIR/NAME.ref
ship() {
    $PY - "$2" "$DIR/$1.pkl" <<'PY'
import sys, cloudpickle
def make_adder(n):
    def add(x):
        return x + n
    return add
def odd_set(x):
    return {x, -x}
def boom(x):
    if x == 3:
        raise ValueError("item 3 is bad")
    return x
value = eval(sys.argv[1])
open(sys.argv[2], "wb").write(cloudpickle.dumps(value))
PY
    local sha size
    sha=$(sha256sum "$DIR/$1.pkl" | cut -d' ' -f1)
    size=$(stat -c %s "$DIR/$1.pkl")
    "$CB" storage put "$DIR/$1.pkl" "s3://cbcore/code/$sha.pkl" >"$DIR/$1.put" 2>&1
    printf '{"$cb_ref": "s3://cbcore/code/%s.pkl", "size": %s, "sha256": "%s"}' "$sha" "$size" "$sha" >"$DIR/$1.ref"
}

# run JOB REF-FILE ITEMS [PYTHON]: submit a map of the shipped function
run() {
    printf '{"tenant": "%s", "job_id": "%s", "kind": "map", "function": {"backend": "local", "name": "python", "code": %s, "python": "%s"}, "input": {"items": %s}}\n' \
        "$T" "$1" "$(cat "$2")" "${4:-$HERE}" "$3" >"$DIR/$1.json"
    "$CB" submit "$DIR/$1.json" >/dev/null 2>"$DIR/$1.submit"
}

ship add7 'lambda x: x + 7'
ship adder 'make_adder(100)'
ship sets 'odd_set'
ship boom 'boom'
ship notfn '42'

run lambda "$DIR/add7.ref" '[1, 2, 3, 4]'
check "a shipped lambda runs: map(lambda x: x + 7, [1, 2, 3, 4])" \
    test "$("$CB" result --timeout 60 "$T/lambda")" = "[8,9,10,11]"
run closure "$DIR/adder.ref" '[1, 2]'
check "a shipped closure keeps what it closed over" \
    test "$("$CB" result --timeout 60 "$T/closure")" = "[101,102]"
run again "$DIR/add7.ref" '[10]'
check "the same code in another job" \
    test "$("$CB" result --timeout 60 "$T/again")" = "[17]"
run sets "$DIR/sets.ref" '[5]'
"$CB" result --timeout 60 "$T/sets" >"$DIR/sets.out"
check "a result JSON cannot carry comes back pickled ({\"\$cb_pickle\"}) and unpickles to the set" \
    $PY -c 'import sys, json, base64, cloudpickle
r = json.load(open(sys.argv[1]))
sys.exit(0 if cloudpickle.loads(base64.b64decode(r[0]["$cb_pickle"])) == {5, -5} else 1)' "$DIR/sets.out"
run boom "$DIR/boom.ref" '[1, 3]'
"$CB" result --timeout 60 "$T/boom" >/dev/null 2>"$DIR/boom.err"
check "a remote exception fails the task with its type and message" grep -q "ValueError: item 3 is bad" "$DIR/boom.err"
"$CB" replay --json --job "$T/boom" >"$DIR/boom.log" 2>/dev/null
check "... and its remote traceback (in the log)" \
    $PY -c 'import sys, json
ok = any("Traceback" in (json.loads(l)["data"].get("stderr") or "") and "item 3 is bad" in json.loads(l)["data"].get("stderr", "")
         for l in open(sys.argv[1]) if json.loads(l)["type"] == "cb.task.failed")
sys.exit(0 if ok else 1)' "$DIR/boom.log"
run version "$DIR/add7.ref" '[1]' 3.99
"$CB" result --timeout 60 "$T/version" >/dev/null 2>"$DIR/version.err"
check "a Python version mismatch is the task's clear error" grep -q "shipped from Python 3.99 and this runtime is $HERE" "$DIR/version.err"
sed 's/"sha256": "[0-9a-f]*"/"sha256": "0000000000000000000000000000000000000000000000000000000000000000"/' "$DIR/add7.ref" >"$DIR/badsha.ref"
run badsha "$DIR/badsha.ref" '[1]'
"$CB" result --timeout 60 "$T/badsha" >/dev/null 2>"$DIR/badsha.err"
check "bytes that do not match the reference's sha256 are refused" grep -q "sha256" "$DIR/badsha.err"
run notfn "$DIR/notfn.ref" '[1]'
"$CB" result --timeout 60 "$T/notfn" >/dev/null 2>"$DIR/notfn.err"
check "a shipped object that is no function is the task's clear error" grep -q "not a function" "$DIR/notfn.err"

# the intake: code only for the python runtime, and that runtime needs code
printf '{"tenant": "%s", "kind": "call", "function": {"backend": "local", "name": "echo", "code": %s}, "input": 1}\n' \
    "$T" "$(cat "$DIR/add7.ref")" >"$DIR/wrongrt.json"
"$CB" submit "$DIR/wrongrt.json" >"$DIR/wrongrt.out" 2>&1
check "code on another runtime is rejected at intake, naming /function/code" grep -q "/function/code" "$DIR/wrongrt.out"
printf '{"tenant": "%s", "kind": "call", "function": {"backend": "local", "name": "python"}, "input": 1}\n' "$T" >"$DIR/nocode.json"
"$CB" submit "$DIR/nocode.json" >"$DIR/nocode.out" 2>&1
check "the python runtime without code is rejected at intake" grep -q "needs its code" "$DIR/nocode.out"

if [ $fails -eq 0 ]; then echo "all checks passed"; else
    echo "$fails checks failed"
    echo "--- adapter log:"; tail -5 "$CB_DIR/logs/adapter0.log"
    exit 1
fi
