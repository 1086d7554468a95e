#!/usr/bin/env bash
# tests/it_cli.sh - the front door against a real broker (run once per
# driver by tests/run.sh): `cb up --detach` on the given broker, the client
# commands, `cb watch` under a pseudo-terminal reaching 100%, and the example
# clients in other languages (Node.js over NATS, Python over RabbitMQ).
# Needs CB_TEST_BROKER_URL, CB_TEST_DRIVER, CB_TEST_BIN.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CB="$CB_TEST_BIN/cb"
URL=$CB_TEST_BROKER_URL
# what the stack shows of it: the URL without its password (kept in a 0600 file)
SHOWN=$(printf '%s' "$URL" | sed -E 's|//([^:/@]*):[^@/]*@|//\1@|')
PASS=$(printf '%s' "$URL" | sed -nE 's|.*//[^:/@]*:([^@/]*)@.*|\1|p')
DIR=$(mktemp -d /tmp/cbcli.XXXXXX)
export CB_DIR="$DIR/.cb" CB_LOG_LEVEL=error
unset CB_BROKER_URL
fails=0
failed_names=""
T="cli$$"

stop() {
    # every stack the checks start, also one a failed check left running
    for d in "$CB_DIR" "$DIR/broken" "$DIR/badlogin" "$DIR/s2"; do
        [ -d "$d" ] && "$CB" down --dir "$d" >/dev/null 2>&1
    done
    [ "$fails" -eq 0 ] && rm -rf "$DIR"
}
trap stop EXIT
trap 'exit 130' INT TERM # so that the EXIT trap stops the stack

check() { # check NAME COMMAND...: run, report
    local name=$1
    shift
    if "$@"; then
        echo "ok   $name"
    else
        echo "FAIL $name"
        fails=$((fails + 1))
        failed_names="$failed_names [$name]"
    fi
}

none_running() { # none_running PATTERN: no process has it in its command line
    ! pgrep -f "$1" >/dev/null
}

job() { # job FILE JSON-with-TENANT
    sed "s/TENANT/$T/g" >"$DIR/$1"
}

# -- the README's examples are valid jobs
check "cb validate examples/jobs" "$CB" validate "$ROOT"/examples/jobs/*.json
"$CB" validate --schema job.json "$ROOT/tests/fixtures/functions.json" >"$DIR/val.out" 2>&1
check "cb validate refuses a non-job (exit 1)" test $? -eq 1
check "and names the path and the rule" grep -q '/: missing required property "kind"' "$DIR/val.out"

# -- the stack on the test broker
if ! "$CB" up --detach --dir "$CB_DIR" --broker "$URL" \
    --config "$ROOT/tests/fixtures/functions.json" >"$DIR/up.out" 2>&1; then
    echo "FAIL cb up"; cat "$DIR/up.out"; tail -20 "$CB_DIR"/logs/*.log; exit 1
fi
check "cb up prints the broker" grep -q "export CB_BROKER_URL=$SHOWN" "$DIR/up.out"
check "cb up writes the url" grep -qx "$SHOWN" "$CB_DIR/url"

# -- cb health (the containers' health checks): each daemon of the stack on
# this host reports a live connection; a daemon nobody runs does not
for d in engine projector sla; do
    check "cb health $d: it reports, connected" "$CB" health "$d" --timeout-ms 15000
done
# (cb up names its adapters: adapter0, ...)
check "cb health adapter --id '*': one reports, connected" "$CB" health adapter --id '*' --timeout-ms 15000
check "cb health api --url: cb-api answers GET /v1/health" "$CB" health api --url "$(cat "$CB_DIR/api_url")"
"$CB" health nosuchdaemon --timeout-ms 1500 2>"$DIR/health.err"
check "cb health of a daemon nobody runs fails, saying so" bash -c "[ $? -eq 1 ] && grep -q 'no report of nosuchdaemon on this host' '$DIR/health.err'"
"$CB" health engine --id someone-else --timeout-ms 1500 2>/dev/null
check "... and of an id no engine has" test $? -eq 1
# a host whose name has dots (report ids have '_' for them): cb health
# still finds its daemon (a projector of a store of its own, in a UTS
# namespace named cb.test.host; root only)
if unshare --uts true 2>/dev/null; then
    check "cb health on a host named with dots finds its daemon" unshare --uts sh -c '
        hostname cb.test.host
        CB_STATS_MS=500 "$1" --broker "$2" --store "$3" 2>/dev/null & p=$!
        "$4" health projector --broker "$2" --timeout-ms 10000; rc=$?
        kill $p; wait $p 2>/dev/null; exit $rc' _ "$CB_TEST_BIN/cb-projector" "$URL" "$DIR/dotstore" "$CB"
fi

# -- credentials: in no command line, no world-readable file, no message
if [ -n "$PASS" ]; then
    check "the password is kept in a file only its owner reads" test "$(stat -c %a "$CB_DIR/broker.password")" = 600
    check "no command line shows the password" none_running ":$PASS@"
fi
"$CB" cancel --broker "amqp://guest:s3cretpw@127.0.0.1:1/" "$T/x" >/dev/null 2>"$DIR/pw.err"
check "a connection error names the broker without its password" \
    bash -c "grep -q 'guest:\*\*\*@127.0.0.1:1' '$DIR/pw.err' && ! grep -q s3cretpw '$DIR/pw.err'"

# -- submit --wait: the done line, the result
job mr.json <<'J'
{"tenant": "TENANT", "kind": "map_reduce", "function": {"backend": "local", "name": "add7"},
 "input": {"items": [2, 3, 4, 5]}, "reduce": {"function": {"backend": "local", "name": "sum"}}}
J
"$CB" submit --wait --timeout 120 "$DIR/mr.json" >"$DIR/mr.out" 2>"$DIR/mr.err"
rc=$?
check "submit --wait exits 0" test $rc -eq 0
check "submit --wait prints the id then the done line" \
    /usr/bin/python3 -c 'import json,sys; l=open(sys.argv[1]).read().split("\n"); d=json.loads(l[1]); assert d["status"]=="succeeded" and d["result"]==42 and d["job_id"]==l[0], l' "$DIR/mr.out"
id=$(head -n 1 "$DIR/mr.out")
check "cb result" test "$("$CB" result "$T/$id")" = 42
/usr/bin/python3 -c 'import json, sys; j = json.load(open(sys.argv[1])); j["job_id"] = sys.argv[2]; print(json.dumps(j))' \
    "$DIR/mr.json" "$id" >"$DIR/mr-again.json"
check "submit --wait of the same job again answers with its done message (sent earlier)" \
    bash -c "'$CB' submit --wait --timeout 30 '$DIR/mr-again.json' | tail -n 1 | grep -q '\"result\":42'"

# -- cb result waits for a running job's end; --no-wait says "not finished" (exit 3)
job slow.json <<'J'
{"tenant": "TENANT", "kind": "map", "function": {"backend": "local", "name": "sleep_ms"}, "input": {"items": [10000]}}
J
sid=$("$CB" submit "$DIR/slow.json")
# until the store shows it running. The engine does not wait for the store
# (it folds the log itself), so the store can show a job late: under
# AddressSanitizer a 3 s job had ended before the store showed it at all.
for _ in $(seq 1 100); do
    "$CB" status "$T/$sid" 2>/dev/null | grep -q " running: " && break
    sleep 0.1
done
"$CB" result --no-wait "$T/$sid" >"$DIR/nowait.out" 2>"$DIR/nowait.err"
check "cb result --no-wait on a running job exits 3" test $? -eq 3
check "and prints no result, only why" bash -c "test ! -s '$DIR/nowait.out' && grep -q 'has not finished' '$DIR/nowait.err'"
check "cb result waits for the end" test "$("$CB" result --timeout 60 "$T/$sid")" = '[10000]'
"$CB" result --no-wait "$T/nosuchjob" >/dev/null 2>"$DIR/nojob.err"
check "cb result of an unknown job exits 1" test $? -eq 1

# -- a result too large for the done message: the reduce's output (60,000
# numbers, ~420 KB) is over the adapter's inline limit, so cb up's adapter
# writes it to object storage (.cb/objects) and the done message carries the
# reference; cb result reads it back (docs/storage.md)
job big.json <<'J'
{"tenant": "TENANT", "kind": "map_reduce", "function": {"backend": "local", "name": "echo"},
 "input": {"range": {"start": 100000, "stop": 160000}}, "chunksize": 1000,
 "reduce": {"function": {"backend": "local", "name": "echo"}}}
J
"$CB" submit --wait --timeout 120 "$DIR/big.json" >"$DIR/big.out" 2>"$DIR/big.err"
check "a large result goes by reference (to the output in storage)" \
    grep -qF "\"\$cb_ref\":\"s3://cbcore/results/$T/" "$DIR/big.out"
check "and the done message stays small" test "$(wc -c <"$DIR/big.out")" -lt 4096
bid=$(head -n 1 "$DIR/big.out")
"$CB" result "$T/$bid" >"$DIR/bigres.out"
check "cb result assembles it" /usr/bin/python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); assert r==list(range(100000,160000)), len(r)' "$DIR/bigres.out"
# a map's large result: referenced without the engine parsing its outputs
job bigmap.json <<'J'
{"tenant": "TENANT", "kind": "map", "function": {"backend": "local", "name": "echo"},
 "input": {"range": {"start": 100000, "stop": 160000}}, "chunksize": 1000}
J
"$CB" submit --wait --timeout 120 "$DIR/bigmap.json" >"$DIR/bigmap.out" 2>"$DIR/bigmap.err"
mid=$(head -n 1 "$DIR/bigmap.out")
# ... written by the engine as one object in storage, named in the done message
check "a map's large result is one object in storage (result_ref)" \
    grep -qE "\"result_ref\":\"s3://cbcore/results/$T/$mid/result-[0-9a-f]{16}\.json\"" "$DIR/bigmap.out"
rurl=$(grep -oE 's3://cbcore/results/[^"]+/result-[0-9a-f]{16}\.json' "$DIR/bigmap.out" | head -n 1)
"$CB" storage get "$rurl" "$DIR/bigmap.obj" 2>"$DIR/bigmapobj.err"
check "its object holds the result, with the size and sha256 the done message says" \
    /usr/bin/python3 -c 'import hashlib,json,sys
d=json.loads(open(sys.argv[1]).read().split("\n",1)[1]); b=open(sys.argv[2],"rb").read()
assert d["result_size"]==len(b) and d["result_sha256"]==hashlib.sha256(b).hexdigest(), d
assert json.loads(b)==list(range(100000,160000))' "$DIR/bigmap.out" "$DIR/bigmap.obj"
"$CB" result "$T/$mid" >"$DIR/bigmapres.out"
check "cb result reads it in item order" /usr/bin/python3 -c 'import json,sys; r=json.load(open(sys.argv[1])); assert r==list(range(100000,160000)), len(r)' "$DIR/bigmapres.out"

# -- a failed job has no result: exit 1 and the reason
job boom.json <<'J'
{"tenant": "TENANT", "kind": "call", "function": {"backend": "local", "name": "boom"}, "input": 3}
J
fid=$("$CB" submit "$DIR/boom.json")
"$CB" result --timeout 60 "$T/$fid" >"$DIR/boomres.out" 2>"$DIR/boomres.err"
check "cb result of a failed job exits 1" test $? -eq 1
check "and says why" grep -q "has no result: it failed: .*ValueError: cannot take 3" "$DIR/boomres.err"
# The store shows the terminal state a moment after the done message (the
# engine publishes it first): the tasks are there already.
check "cb status" bash -c "'$CB' status '$T/$id' | grep -q ': 5/5 tasks succeeded'"
check "cb jobs lists it" bash -c "'$CB' jobs | grep -q '$T/$id .* 5/5'"

# -- a job on a pool (docs/engine.md, Pools): what each member took
job pool.json <<'J'
{"tenant": "TENANT", "kind": "map", "function": {"backend": "spread", "name": "add7"}, "input": {"items": [1, 2, 3]}}
J
pid=$("$CB" submit --wait --timeout 60 "$DIR/pool.json" 2>"$DIR/pool.err" | head -n 1)
poolst() { "$CB" status "$T/$pid" 2>/dev/null | grep -q '^  on local: 3 dispatched, 0 running, 0 throttled$'; }
for _ in $(seq 1 100); do poolst && break; sleep 0.05; done # the store folds the end a moment later
check "cb status of a pool's job: each member's dispatched, running and throttled" poolst
check "cb replay names the member and the pool of each dispatch" \
    bash -c "'$CB' replay --job '$T/$pid' | grep -q ' tasks to local of pool spread'"

# -- the DAG example: foreach over a step's output, then a `when` branch
sed "s/\"demo\"/\"$T\"/" "$ROOT/examples/jobs/dag_foreach.json" >"$DIR/dag.json"
"$CB" submit --wait --timeout 120 "$DIR/dag.json" >"$DIR/dag.out" 2>"$DIR/dag.err"
check "the DAG example: plus7 over [1,2,3,4], total 38 > 30, big runs, small is skipped" \
    /usr/bin/python3 -c 'import json,sys; d=json.loads(open(sys.argv[1]).read().split("\n")[1]); assert d["status"]=="succeeded" and d["result"]=={"big":38,"small":None} and d["counts"]["total"]==9, d' "$DIR/dag.out"

# -- a rejected job: one clear line per reason, exit 1
job bad.json <<'J'
{"tenant": "TENANT", "kind": "map", "function": {"backend": "local", "name": "nope"}, "input": {"items": [1]}}
J
"$CB" submit "$DIR/bad.json" >/dev/null 2>"$DIR/bad.err"
check "a rejected job exits 1" test $? -eq 1
check "the reason names the path" grep -q 'rejected: /function/name: no local function named "nope"' "$DIR/bad.err"
"$CB" submit /nonexistent.json 2>"$DIR/nofile.err"
check "a missing file is one line" test "$(wc -l <"$DIR/nofile.err")" -eq 1

# -- cb up runs a worker for each remote backend of the configuration: a
# function nobody serves (port 9) fails with the connection's reason
# (each daemon with a broker identity of its own when the broker has users
# for them: RabbitMQ with its management API)
check "cb up started the remote backend's worker" pgrep -f "cb-adapter --broker [^ ]+ --backend unreachable"
job far.json <<'J'
{"tenant": "TENANT", "kind": "call", "function": {"backend": "unreachable", "name": "f"}, "input": 1}
J
"$CB" submit --wait --timeout 60 "$DIR/far.json" >"$DIR/far.out" 2>&1
check "a remote backend that refuses the connection fails the job with the reason" \
    grep -q 'cannot connect to 127.0.0.1:9: Connection refused' "$DIR/far.out"

# -- lifecycle on a finished job: refused with the reason
"$CB" cancel "$T/$id" 2>"$DIR/cancel.err"
check "cancel of a finished job exits 1" test $? -eq 1
check "and says why" grep -q "already succeeded" "$DIR/cancel.err"

# -- cb retry: a failed job runs again as a new job; a succeeded one is not re-run
"$CB" retry --wait --timeout 60 --job-id "again$$" "$T/$fid" >"$DIR/retry.out" 2>"$DIR/retry.err"
check "cb retry of a job that fails again exits 1" test $? -eq 1
check "and prints the new job's id" grep -qx "again$$" "$DIR/retry.out"
check "then its done message: failed again, for the same reason" \
    grep -q '"job_id":"again'$$'".*"status":"failed".*ValueError: cannot take 3' "$DIR/retry.out"
reran() { "$CB" status "$T/again$$" 2>/dev/null | grep -q "failed: 0/1 tasks succeeded (0 memoized; a re-run of $fid)"; }
for _ in $(seq 200); do reran && break; sleep 0.05; done # the store may lag the done message
check "cb status names what the re-run came from" reran
# -- what it cost (docs/engine.md, Cost): the job's line, the tenant's total, every account's
check "cb status prints the job's cost" \
    bash -c "'$CB' status '$T/again$$' | grep -q '^  cost: [0-9.e-]* (1 invocations, [0-9.e-]* GB-s)\$'"
"$CB" status --json "$T/again$$" >"$DIR/cost.job" 2>&1
check "cb replay --job shows what the invocation cost, where it failed" \
    bash -c "'$CB' replay --job '$T/again$$' | grep -q 'cb.task.failed .*error=.* cost=[0-9.e-]* ([0-9.e-]* GB-s)\$'"
"$CB" status --costs --json >"$DIR/cost.all" 2>&1
check "cb status TENANT prints the tenant's total" \
    bash -c "'$CB' status '$T' | grep -q '^$T cost: [0-9.e-]* ([0-9]* invocations, [0-9.e-]* GB-s)\$'"
check "cb status --costs --json: the tenant's and the local account's totals, the job's within them" \
    /usr/bin/python3 - "$DIR/cost.job" "$DIR/cost.all" "$T" <<'PY'
import json, sys
job, costs, t = json.load(open(sys.argv[1])), json.load(open(sys.argv[2])), sys.argv[3]
mine, local = costs["tenants"][t], costs["backends"]["local"]
assert job["cost"]["invocations"] == 1 and job["cost"]["nanos"] >= 200, job["cost"]
assert mine["nanos"] >= job["cost"]["nanos"] and mine["invocations"] >= 2, mine
assert local["nanos"] >= mine["nanos"], (local, mine)
PY
"$CB" retry "$T/$id" 2>"$DIR/retry2.err"
check "cb retry of a succeeded job exits 1" test $? -eq 1
check "and says why" grep -q "succeeded: only a failed or cancelled job" "$DIR/retry2.err"

# -- cb watch under a pseudo-terminal: the bar reaches 100%
job many.json <<'J'
{"tenant": "TENANT", "kind": "map", "function": {"backend": "local", "name": "sleep_ms"},
 "input": {"items": [20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20, 20]},
 "parallelism": 4}
J
wid=$("$CB" submit "$DIR/many.json")
script -q -e -c "'$CB' watch '$T/$wid'" /dev/null >"$DIR/watch.out" 2>&1
check "cb watch (pty) exits 0" test $? -eq 0
check "cb watch (pty) draws the bar at 100%" grep -q "\[##############################\] 100% 20/20" "$DIR/watch.out"
check "cb watch prints the summary" grep -q "succeeded: 20/20 tasks" "$DIR/watch.out"
"$CB" watch "$T/$wid" >"$DIR/watch2.out" 2>&1
check "cb watch of a finished job (no tty) ends at once" grep -q "20/20 done" "$DIR/watch2.out"

# -- supervision: the engine killed with -9 is restarted and serves again
epid=$(pgrep -f "cb-engine --broker [^ ]+ --store $CB_DIR/store" | head -n 1)
check "the engine runs under cb up" test -n "$epid"
kill -9 "$epid" 2>/dev/null
# wait for the supervisor's line itself (tail -F follows the log; bounded)
grep -q -m 1 "engine exited (killed by signal 9" < <(timeout 20 tail -n +1 -F "$CB_DIR/logs/up.log" 2>/dev/null)
check "cb up logs the engine's death and the restart" grep -q "engine exited (killed by signal 9 (Killed)).*; restarting in" "$CB_DIR/logs/up.log"
for _ in $(seq 1 60); do # the restarted engine answers again (no responders until then)
    "$CB" submit --wait --timeout 60 "$DIR/mr.json" >"$DIR/again.out" 2>"$DIR/again.err" && break
    sleep 0.5
done
check "a job runs after the restart" grep -q '"result":42' "$DIR/again.out"

# -- an adapter killed mid-task: its command reaches the next worker within
# the lease (5 s; it was 30 s), so the job ends within task + lease + margin
job hold.json <<'J'
{"tenant": "TENANT", "kind": "call", "function": {"backend": "local", "name": "sleep_ms"}, "input": 3000}
J
hid=$("$CB" submit "$DIR/hold.json")
running=1
for _ in $(seq 1 100); do # until the adapter runs it (bounded: 10 s)
    "$CB" inspect task "$T/$hid" 0 2>/dev/null | grep -q '"status": *"running"' && running=0 && break
    sleep 0.1
done
check "the task runs on the adapter" test $running -eq 0
check "cb status shows the invocation in flight and for how long"     bash -c "'$CB' status '$T/$hid' | grep -q 'longest in flight: task 0 (attempt 1), [0-9]* s'"
kill -9 "$(cat "$CB_DIR/adapter0.pid")"
"$CB" result --timeout 12 "$T/$hid" >"$DIR/hold.out" 2>"$DIR/hold.err"
check "an adapter killed mid-task costs its lease, not 30 s (done within 12 s of the kill)" test $? -eq 0
check "and the task ran to its result" grep -qx 3000 "$DIR/hold.out"

# -- clients in other languages, on their broker
job ex.json <<'J'
{"tenant": "TENANT", "kind": "map_reduce", "function": {"backend": "local", "name": "add7"},
 "input": {"items": [2, 3, 4, 5]}, "reduce": {"function": {"backend": "local", "name": "sum"}}}
J
if [ "$CB_TEST_DRIVER" = nats ]; then
    if [ ! -d "$ROOT/examples/node/node_modules/nats" ]; then
        (cd "$ROOT/examples/node" && npm ci --no-audit --no-fund >/dev/null 2>&1)
    fi
    node "$ROOT/examples/node/submit.js" "$DIR/ex.json" "$URL" >"$DIR/node.out" 2>"$DIR/node.err"
    check "Node.js example exits 0" test $? -eq 0
    check "Node.js example gets result 42" \
        /usr/bin/python3 -c 'import json,sys; d=json.loads(open(sys.argv[1]).read()); assert d["status"]=="succeeded" and d["result"]==42, d' "$DIR/node.out"
else
    /usr/bin/python3 "$ROOT/examples/python/submit_amqp.py" "$DIR/ex.json" "$URL" >"$DIR/py.out" 2>"$DIR/py.err"
    check "Python (pika) example exits 0" test $? -eq 0
    check "Python (pika) example gets result 42" \
        /usr/bin/python3 -c 'import json,sys; d=json.loads(open(sys.argv[1]).read()); assert d["status"]=="succeeded" and d["result"]==42, d' "$DIR/py.out"
fi
CB_BROKER_URL=$URL "$ROOT/examples/shell/submit.sh" "$DIR/ex.json" >"$DIR/sh.out" 2>"$DIR/sh.err"
check "shell example prints the result" grep -qx 42 "$DIR/sh.out"

# -- a damaged store is refused with the fix, not a SIGBUS
mkdir -p "$DIR/damaged"
if mdb_copy "$CB_DIR/store" "$DIR/damaged"; then
    truncate -s 12288 "$DIR/damaged/data.mdb"
    "$CB" status --store "$DIR/damaged" "$T/$id" >/dev/null 2>"$DIR/damaged.err"
    check "cb status on a truncated store exits 1 (no SIGBUS)" test $? -eq 1
    check "and names the fix" grep -q "is damaged.*cb replay --rebuild" "$DIR/damaged.err"
else
    check "mdb_copy of the store" false
fi

# -- cb up safety: one stack per directory, bad input at once, daemons die with it
"$CB" up --detach --dir "$CB_DIR" --broker "$URL" >/dev/null 2>"$DIR/twice.err"
check "a second cb up on a live directory is refused" test $? -eq 1
check "and names the running stack" grep -q "already runs from $CB_DIR (pid $(cat "$CB_DIR/up.pid"), broker $SHOWN)" "$DIR/twice.err"
check "the first stack still has its url" grep -qx "$SHOWN" "$CB_DIR/url"
"$CB" up --detach --dir "$DIR/other" --broker "ftp://$(echo "$URL" | sed 's|^[a-z]*://||')" >/dev/null 2>"$DIR/scheme.err"
check "an unknown broker scheme is refused at once (exit 2)" test $? -eq 2
if [ "$CB_TEST_DRIVER" = amqp ]; then # a refused login is named at once, not retried for 15 s
    start=$(date +%s)
    "$CB" up --detach --dir "$DIR/badlogin" --broker "$(printf '%s' "$URL" | sed -E 's|//([^:/@]*):[^@/]*@|//\1:wrong-pw@|')" >/dev/null 2>"$DIR/badlogin.err"
    check "a refused broker login fails cb up" test $? -eq 1
    vhost=$(printf '%s' "$URL" | sed -E 's|^amqps?://[^/]*/?||')
    check "naming the refusal" grep -q "login as guest on vhost ${vhost:-/} refused" "$DIR/badlogin.err"
    check "at once (under 10 s)" test $(($(date +%s) - start)) -lt 10
    check "without showing the password" bash -c "! grep -q wrong-pw '$DIR/badlogin.err'"
fi
printf '{"backends": ' >"$DIR/broken.json"
start=$(date +%s)
# (a private nats-server: on a shared broker another stack's engine would answer the readiness probe)
timeout 60 "$CB" up --detach --dir "$DIR/broken" --config "$DIR/broken.json" >/dev/null 2>"$DIR/broken.err"
check "a broken configuration fails cb up (exit 1)" test $? -eq 1
check "with the daemon's own error line" grep -q "configuration: .*broken.json" "$DIR/broken.err"
check "within 30 s, not a minute of silence" test $(($(date +%s) - start)) -lt 30
check "and leaves nothing running" none_running "$DIR/broken/"

# -- the stack goes before the benchmarks: its adapter would compete for
# their invocations
(cd "$DIR" && "$CB" down >/dev/null 2>&1) # DIR from $CB_DIR, as the other commands
check "cb down stops the stack (DIR from \$CB_DIR)" test ! -e "$CB_DIR/up.pid"

# -- a stack of its own (private nats-server): killing its supervisor with
# SIGKILL stops every daemon, nats-server included
S2="$DIR/s2"
if "$CB" up --detach --dir "$S2" >/dev/null 2>"$DIR/s2.err"; then
    pids=$(cat "$S2"/*.pid)
    kill -9 "$(cat "$S2/up.pid")"
    for _ in $(seq 1 150); do # the kernel sends them SIGTERM; a bounded wait for it
        alive=0
        for p in $pids; do kill -0 "$p" 2>/dev/null && alive=1; done
        [ $alive -eq 0 ] && break
        sleep 0.1
    done
    check "killing the supervisor (SIGKILL) stops every daemon and nats-server" test $alive -eq 0
    "$CB" down --dir "$S2" >/dev/null 2>&1
    check "nothing of that stack runs after cb down" none_running "$S2/"
else
    check "a private stack starts" false
fi

# -- cb bench stopped by a signal stops what it started: its private broker
# and its stack (SIGTERM, as timeout(1) sends, once the stack runs)
if [ "$CB_TEST_DRIVER" = nats ]; then
    before=$(ls -d /tmp/cbbench.* /tmp/cbbench-stack.* 2>/dev/null | sort)
    CB_LOG_LEVEL=error "$CB" bench fanout --n 1000000 --runs 1 --broker nats --json >/dev/null 2>"$DIR/bench-int.err" &
    bpid=$!
    for _ in $(seq 1 300); do # until its stack is ready (bounded: 30 s)
        new=$(comm -13 <(echo "$before") <(ls -d /tmp/cbbench-stack.*/cb/url 2>/dev/null | sed 's|/cb/url$||' | sort))
        [ -n "$new" ] && break
        sleep 0.1
    done
    check "cb bench started a stack of its own" test -n "$new"
    kill -TERM "$bpid"
    wait "$bpid"
    check "cb bench dies of the SIGTERM" test $? -eq 143
    check "nothing it started runs any more" none_running "/tmp/cbbench"
    after=$(ls -d /tmp/cbbench.* /tmp/cbbench-stack.* 2>/dev/null | sort)
    check "and its directories are gone" test "$before" = "$after"
fi

# -- benchmark smoke runs (tiny N; the figures are not checked, the JSON is).
for w in "broker --n 500" "adapter --backend local --n 200" "replay --events 500"; do
    # shellcheck disable=SC2086
    b="$DIR/bench-${w%% *}"
    CB_LOG_LEVEL=warn "$CB" bench $w --runs 1 --broker "$CB_TEST_DRIVER" --url "$URL" --json >"$b.out" 2>"$b.err"
    echo "exit status $?" >>"$b.err" # kept per workload: a failure shows its own output
    check "cb bench ${w%% *} prints its JSON" /usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["workload"]==sys.argv[2] and "machine" in d, d' "$b.out" "${w%% *}"
done
for w in "fanout --n 100" "parallel-sleep --n 4" "chain --n 5" "jobs --n 5" "big-map --n 2000"; do
    # shellcheck disable=SC2086
    b="$DIR/bench-${w%% *}"
    CB_LOG_LEVEL=warn "$CB" bench $w --runs 1 --broker "$CB_TEST_DRIVER" --url "$URL" --json >"$b.out" 2>"$b.err"
    echo "exit status $?" >>"$b.err"
    check "cb bench ${w%% *} prints its JSON with vs_broker_limit and resources" /usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); f=d["figures"]; assert d["workload"]==sys.argv[2] and f["vs_broker_limit"]>0 and d["broker_limit"]["append_per_s"]>0 and d["resources"]["engine"]["peak_rss_mb"]>0 and len(d["per_run"])==1, d' "$b.out" "${w%% *}"
done
# two partitions, two engines: every task of the two maps is read back
# from its own partition's log (invocations and latencies of all 400)
b="$DIR/bench-fanout-p2"
CB_LOG_LEVEL=warn "$CB" bench fanout --n 400 --partitions 2 --runs 1 --broker "$CB_TEST_DRIVER" --url "$URL" --json >"$b.out" 2>"$b.err"
echo "exit status $?" >>"$b.err"
check "cb bench fanout --partitions 2 reads both logs back: 400 invocations, latencies" /usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); r=d["per_run"][0]; assert d["partitions"]==2 and r["invocations"]==400 and r["events"]>0 and r["latency_ms"]["p99"]>0 and "engine1" in d["resources"], d' "$b.out"

if [ "$fails" -ne 0 ]; then
    echo "$fails checks failed; files kept in $DIR"
    for f in "$DIR"/*.err "$DIR"/*.out; do echo "--- $f"; tail -5 "$f"; done
    tail -n 5 "$CB_DIR"/logs/*.log
    # last, so that a cut log still shows them: the benches that failed
    for f in "$DIR"/bench-*.err; do
        grep -qx "exit status 0" "$f" || { echo "--- $f"; tail -n 20 "$f"; }
    done
    echo "failed checks:$failed_names"
    exit 1
fi
echo "all checks passed"
