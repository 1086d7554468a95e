#!/usr/bin/env bash
# tests/it_sla.sh - the SLA evaluator (cb-sla, docs/sla.md) on a `cb up`
# stack, once per driver (tests/run.sh): a job's own guarantee breached by
# slow tasks (cb.sla.violated in the log within 1 s of each task's outcome,
# with the observed time; the notification on cb.sla.<tenant>.<agreement>
# through `cb sla watch`); repetitions (no breach after 2 violations, one at
# the 3rd); a job-level guarantee; cb-sla killed with SIGKILL in the middle
# of a job: every breach is in the log once, none lost.
# Needs CB_TEST_BROKER_URL, CB_TEST_BIN.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CB="$CB_TEST_BIN/cb"
DIR=$(mktemp -d /tmp/cbsla.XXXXXX)
export CB_DIR="$DIR/.cb" CB_LOG_LEVEL=error
unset CB_BROKER_URL CB_CONFIG CB_API_URL
PY=/usr/bin/python3
T="sla$$"
fails=0
WATCH_PID=

stop() {
    [ -n "$WATCH_PID" ] && kill "$WATCH_PID" 2>/dev/null
    "$CB" down --dir "$CB_DIR" >/dev/null 2>&1
    [ "$fails" -eq 0 ] && rm -rf "$DIR"
}
trap stop EXIT
trap 'exit 130' INT TERM

. "$ROOT/tests/lib.sh" # check

if ! "$CB" up --detach --dir "$CB_DIR" --broker "$CB_TEST_BROKER_URL" >"$DIR/up.out" 2>&1; then
    echo "FAIL cb up"; cat "$DIR/up.out"; exit 1
fi
API=$(cat "$CB_DIR/api_url")

# job JOB ITEMS GUARANTEES [PARALLELISM]: submit a map of sleep_ms and wait for its end
job() {
    printf '{"tenant": "%s", "job_id": "%s", "kind": "map", "function": {"backend": "local", "name": "sleep_ms"}, "input": {"items": %s}, "parallelism": %s, "sla": {"guarantees": %s}}\n' \
        "$T" "$1" "$2" "${4:-100}" "$3" >"$DIR/$1.json"
    "$CB" submit "$DIR/$1.json" --wait --timeout 60 >"$DIR/$1.done" 2>"$DIR/$1.err"
    grep -q '"status":"succeeded"' "$DIR/$1.done" || { echo "job $1 did not succeed:"; cat "$DIR/$1.err" "$DIR/$1.done"; return 1; }
}

# notes FILE JOB N MIN_OBSERVED: the N notifications of FILE (cb sla watch)
# for JOB are its breaches: distinct ordinals 1..N, each within 1 s of the
# outcome of the task it names (the job's timeline), observed >= MIN
notes() {
    $PY - "$CB" "$T" "$1" "$2" "$3" "$4" >"$DIR/$2.check" 2>&1 <<'PY'
import json, subprocess, sys
from datetime import datetime
cb, tenant, path, job, want, least = sys.argv[1:5] + [int(sys.argv[5]), float(sys.argv[6])]
def t(s):
    return datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
notes = [json.loads(l) for l in open(path) if l.strip()]
mine = [n for n in notes if n["job"] == job]
print("notes for", job, [(n["breach"]["ordinal"], n["breach"].get("task")) for n in mine])
assert len(mine) == want, "%d breaches, want %d" % (len(mine), want)
assert sorted(n["breach"]["ordinal"] for n in mine) == list(range(1, want + 1)), "ordinals"
out = subprocess.run([cb, "replay", "--job", "%s/%s" % (tenant, job), "--json"],
                     capture_output=True, text=True, timeout=60).stdout
outcome = {e["data"]["task"]: t(e["time"]) for e in map(json.loads, out.splitlines())
           if e["type"] == "cb.task.succeeded"}
for n in mine:
    b = n["breach"]
    assert b["observed"] >= least, b
    if b["level"] == "task":
        lag = t(n["time"]) - outcome[b["task"]]
        assert 0 <= lag < 1.0, "breach %s %.3f s after its task" % (n["id"], lag)
PY
    local rc=$?
    [ $rc -eq 0 ] || cat "$DIR/$2.check"
    return $rc
}

# violations JOB N: wait (up to 20 s) until the store counts N breaches of
# the job (the projector folds every cb.sla.violated, a repeated one twice)
violations() {
    local got=
    for _ in $(seq 400); do
        got=$("$CB" status "$T/$1" --json 2>/dev/null | $PY -c 'import json,sys; print(json.load(sys.stdin)["tasks"]["sla_violations"])' 2>/dev/null)
        [ "$got" = "$2" ] && return 0
        sleep 0.05
    done
    echo "the store counts ${got:-nothing} breaches of $1, want $2"
    return 1
}

# watch FILE COUNT: cb sla watch in the background until it has COUNT notes
watch() {
    "$CB" sla watch "$T" --count "$2" --timeout-ms 60000 >"$1" 2>"$1.err" &
    WATCH_PID=$!
    for _ in $(seq 200); do grep -q watching "$1.err" && break; sleep 0.05; done
    grep -q "watching cb.sla.$T.>" "$1.err"
}

watched() { # wait for the watcher to end; 0 when it got its count
    local rc
    wait "$WATCH_PID"; rc=$?; WATCH_PID=
    return $rc
}

# 1. [execution_time] < 100 over tasks of 300 ms: two breaches, notified
check "cb sla watch subscribed" watch "$DIR/w1" 2
job slow '[300, 300]' '[{"name": "fast", "constraint": "[execution_time] < 100"}]'
check "the job itself succeeds" grep -q '"status":"succeeded"' "$DIR/slow.done"
check "both breaches notified" watched
check "... each within 1 s of its task's outcome, about 300 ms observed" notes "$DIR/w1" slow 2 250
check "... and in the log (the store counts 2)" violations slow 2
check "... with the guarantee and its constraint" grep -q '"guarantee":"fast","constraint":"\[execution_time\] < 100"' "$DIR/w1"

# 2. repetitions 3: two violations are no breach, the third is (one watcher
# for both jobs: a breach of the first would come before the second's)
check "watching again" watch "$DIR/w2" 1
job reps2 '[300, 300]' '[{"name": "fast", "constraint": "[execution_time] < 100", "repetitions": 3}]' 1
job reps3 '[300, 300, 300]' '[{"name": "fast", "constraint": "[execution_time] < 100", "repetitions": 3}]' 1
check "a breach notified" watched
check "repetitions 3: no breach after 2 violations" notes "$DIR/w2" reps2 0 0
check "repetitions 3: a breach at the 3rd" notes "$DIR/w2" reps3 1 250

# 3. a job-level guarantee, and one that holds (judged at the job's end)
check "watching again" watch "$DIR/w3" 1
job span '[400]' '[{"name": "quick", "constraint": "[makespan] < 200"}, {"name": "ok", "constraint": "[failure_rate] <= 0"}]'
check "[makespan] < 200 of a 400 ms job: its breach notified" watched
check "... for the guarantee quick only, with the makespan observed" $PY -c '
import json, sys
n = [json.loads(l) for l in open(sys.argv[1])]
assert len(n) == 1 and n[0]["job"] == "span", n
b = n[0]["breach"]
assert b["guarantee"] == "quick" and b["level"] == "job" and b["observed"] >= 400, b' "$DIR/w3"
check "... and in the log (the store counts 1)" violations span 1

# 4. a bad constraint is refused at submission with its position
printf '{"tenant": "%s", "kind": "call", "function": {"backend": "local", "name": "noop"}, "input": 1, "sla": {"guarantees": [{"name": "g", "constraint": "[exec_time] < 1"}]}}\n' "$T" >"$DIR/bad.json"
"$CB" submit "$DIR/bad.json" >"$DIR/bad.out" 2>&1
check "an unknown metric is refused at submission, with its position" grep -q '/sla/guarantees/0/constraint: at 1: unknown metric \\"exec_time\\"\|/sla/guarantees/0/constraint: at 1: unknown metric "exec_time"' "$DIR/bad.out"

# 5. cb-sla killed with SIGKILL mid-job: 10 tasks of 200 ms one after the other
printf '{"tenant": "%s", "job_id": "crash", "kind": "map", "function": {"backend": "local", "name": "sleep_ms"}, "input": {"items": [200, 200, 200, 200, 200, 200, 200, 200, 200, 200]}, "parallelism": 1, "sla": {"guarantees": [{"name": "fast", "constraint": "[execution_time] < 100"}]}}\n' "$T" >"$DIR/crash.json"
"$CB" submit "$DIR/crash.json" --wait --timeout 60 >"$DIR/crash.done" 2>&1 &
SUB=$!
$PY - "$API" "$T" <<'PY' # until 3 tasks ended (bounded)
import json, sys, time, urllib.request
api, tenant = sys.argv[1:3]
deadline = time.time() + 20
while time.time() < deadline:
    try:
        j = json.load(urllib.request.urlopen("%s/v1/jobs/%s/crash" % (api, tenant), timeout=5))
        if j["counts"]["succeeded"] >= 3:
            break
    except Exception:
        pass
    time.sleep(0.05)
PY
OLD=$(cat "$CB_DIR/sla.pid")
kill -9 "$OLD"
wait "$SUB"
check "the job ends while cb-sla restarts" grep -q '"status":"succeeded"' "$DIR/crash.done"
check "every breach is in the log once: the store counts 10, none lost, none twice" violations crash 10
check "cb-sla was restarted (a new process)" test "$(cat "$CB_DIR/sla.pid")" != "$OLD"

[ "$fails" -eq 0 ]
