#!/usr/bin/env bash
# tests/cluster_nats.sh - a 3-node JetStream cluster (run once by
# tests/run.sh). The stream settings a deployment chose survive: a `cb up` stack whose
# shared configuration says "broker": {"replicas": 3} creates R3 streams;
# then a process started with the default (1) connects; `cb doctor` reads
# the streams from the server and must still find R3 on three peers, and a
# job runs. Then a node failure: kill -9 of the log's stream leader during a
# 10,000-task map, and its restart (docs/broker.md "Node failure").
# Needs CB_TEST_BIN.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CB="$CB_TEST_BIN/cb"
DIR=$(mktemp -d /tmp/cbcluster.XXXXXX)
. "$ROOT/tools/brokers.sh"
fails=0
check() { # check NAME COMMAND...
    local name=$1
    shift
    if "$@"; then echo "ok   $name"; else echo "FAIL $name"; fails=$((fails + 1)); fi
}
pids=()
stop() {
    "$CB" down --dir "$DIR/.cb" >/dev/null 2>&1
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${pids[@]}"; do cb_wait_for 20 cb_not_running "$p"; done
    [ "$fails" -eq 0 ] && rm -rf "$DIR"
}
trap stop EXIT
trap 'exit 130' INT TERM

# three nodes on free loopback ports, each with its own JetStream directory
declare -a port mon route
for i in 1 2 3; do
    port[$i]=$(cb_free_port)
    mon[$i]=$(cb_free_port)
    route[$i]=$(cb_free_port)
done
routes="nats-route://127.0.0.1:${route[1]}, nats-route://127.0.0.1:${route[2]}, nats-route://127.0.0.1:${route[3]}"
for i in 1 2 3; do
    mkdir -p "$DIR/n$i"
    cat >"$DIR/n$i.conf" <<C
server_name: n$i
listen: 127.0.0.1:${port[$i]}
http: 127.0.0.1:${mon[$i]}
jetstream { store_dir: "$DIR/n$i" }
cluster { name: cbtest, listen: 127.0.0.1:${route[$i]}, routes: [$routes] }
C
    nats-server -c "$DIR/n$i.conf" >>"$DIR/n$i.log" 2>&1 &
    pids+=($!)
    npid[$i]=$!
done
for i in 1 2 3; do
    if ! cb_wait_for 60 curl -sf "http://127.0.0.1:${mon[$i]}/healthz"; then
        echo "FAIL node n$i did not become healthy"; tail -20 "$DIR/n$i.log"; fails=1; exit 1
    fi
done
URL="nats://127.0.0.1:${port[1]},nats://127.0.0.1:${port[2]},nats://127.0.0.1:${port[3]}"

# the deployment's choice, in the configuration every daemon of the stack reads
printf '{"broker": {"replicas": 3}, "backends": {"local": {}}}' >"$DIR/cb.json"
"$CB" up --detach --dir "$DIR/.cb" --broker "$URL" --config "$DIR/cb.json" >/dev/null 2>"$DIR/up.err"
check "a cb up stack with replicas 3 in its configuration starts on the cluster" test $? -eq 0
# (right after the streams and consumers are made, their raft groups elect
# leaders and a JetStream request can time out: ask until it answers)
doctor() { "$CB" doctor --broker "$URL" --json >"$1" 2>"$1.err"; }
check "cb doctor answers" cb_wait_for 60 doctor "$DIR/doctor0.json"
check "its streams are R3, a quorum of peers current (read from the server)" \
    /usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))["broker"]["durability"]; assert d["replicas"]==3 and d["peers"]>=2, d' "$DIR/doctor0.json"

# a process started with the default, as an operator might
"$CB_TEST_BIN/cb-projector" --broker "$URL" --store "$DIR/store1" 2>"$DIR/p1.log" &
pids+=($!)
check "a cb-projector with the default (1) connects" cb_wait_for 60 grep -q "connected to" "$DIR/p1.log"
check "cb doctor answers again" cb_wait_for 60 doctor "$DIR/doctor.json"
check "every stream is still R3 (read from the server)" \
    /usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))["broker"]["durability"]; assert d["replicas"]==3 and d["peers"]>=2, d' "$DIR/doctor.json"
check "it said it kept the replicas" grep -q "replicas, more than the 1 asked for: kept" "$DIR/p1.log"
printf '{"tenant": "cluster", "kind": "call", "function": {"backend": "local", "name": "echo"}, "input": 42}' >"$DIR/job.json"
# (a submission that meets a stream leader election is refused with "submit
# it again", as a client would: again, bounded)
submit() { CB_BROKER_URL=$URL "$CB" submit --wait --timeout 60 "$DIR/job.json" >"$DIR/job.out" 2>&1; }
cb_wait_for 120 submit
check "a job runs on the cluster" grep -q '"result":42' "$DIR/job.out"

# ---- node failure: kill -9 the node that leads the log's stream while a
# 10,000-task map runs, restart it; the job ends with every output once, the
# daemons reconnect by themselves, the three replicas agree again, and the
# store equals a rebuild of the log. What stalled, and how long, is printed.
leader_of() { # leader_of STREAM: its leader as a live node reports it
    local i
    for i in 1 2 3; do
        curl -sf --max-time 2 "http://127.0.0.1:${mon[$i]}/jsz?streams=true" |
            /usr/bin/python3 -c '
import json, sys
for a in json.load(sys.stdin).get("account_details", []):
    for s in a.get("stream_detail", []):
        if s["name"] == sys.argv[1] and s.get("cluster", {}).get("leader"):
            print(s["cluster"]["leader"]); sys.exit(0)
sys.exit(1)' "$1" && return 0
    done
    return 1
}
STORE="$DIR/.cb/store"
/usr/bin/python3 -c '
import json
print(json.dumps({"tenant": "cluster", "kind": "map", "function": {"backend": "local", "name": "sleep_ms"},
                  "input": {"items": [{"ms": 100, "i": i} for i in range(10000)]}}))' >"$DIR/map.json"
restarts_before=$(grep -c "exited" "$DIR/.cb/logs/up.log")
t0=$(date +%s.%N)
submit_map() { CB_BROKER_URL=$URL "$CB" submit "$DIR/map.json" >"$DIR/map.id" 2>"$DIR/map.err"; }
check "a 10,000-task map is submitted" cb_wait_for 60 submit_map
JOB=$(cat "$DIR/map.id")
succeeded() { "$CB" status "cluster/$JOB" --store "$STORE" --json 2>/dev/null |
    /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["tasks"]["succeeded"])'; }
past() { [ "$(succeeded)" -ge "$1" ] 2>/dev/null; }
check "it runs (1,000 tasks succeeded)" cb_wait_for 120 past 1000
leader=$(leader_of CB_EVENTS)
k=${leader#n}
check "the log's stream has a leader" test -n "$leader" -a -n "${npid[$k]:-}"
at_kill=$(succeeded)
kill -9 "${npid[$k]}"
t_kill=$(date +%s.%N)
wait "${npid[$k]}" 2>/dev/null
echo "     kill -9 of $leader (leader of CB_EVENTS) after $at_kill tasks"
check "the job goes on without $leader" cb_wait_for 120 past $((at_kill + 1000))
nats-server -c "$DIR/n$k.conf" >>"$DIR/n$k.log" 2>&1 &
npid[$k]=$!
pids+=($!)
check "$leader is back" cb_wait_for 60 curl -sf "http://127.0.0.1:${mon[$k]}/healthz"
"$CB" result "cluster/$JOB" --store "$STORE" --broker "$URL" --timeout 300 >"$DIR/map.out" 2>"$DIR/map.rerr"
t_end=$(date +%s.%N)
check "the job ends with every output exactly once, in order" /usr/bin/python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
assert r == [{"ms": 100, "i": i} for i in range(10000)], str(r)[:300]' "$DIR/map.out"
check "no daemon of the stack was restarted: each reconnected by itself" \
    test "$(grep -c "exited" "$DIR/.cb/logs/up.log")" -eq "$restarts_before"
last_seqs() { # the log's last sequence on each node: the same on all three
    local i out=""
    for i in 1 2 3; do
        out="$out $(curl -sf --max-time 2 "http://127.0.0.1:${mon[$i]}/jsz?streams=true" | /usr/bin/python3 -c '
import json, sys
for a in json.load(sys.stdin).get("account_details", []):
    for s in a.get("stream_detail", []):
        if s["name"] == "CB_EVENTS": print(s["state"]["last_seq"], s["state"]["messages"])')"
    done
    echo "$out" >"$DIR/seqs"
    /usr/bin/python3 -c 'import sys; w=sys.argv[1].split(); assert len(w)==6 and len(set(w[0::2]))==1 and len(set(w[1::2]))==1' "$out"
}
check "the three replicas of the log agree again" cb_wait_for 60 last_seqs
verify() { "$CB" replay --broker "$URL" --verify --store "$STORE" >"$DIR/verify.out" 2>&1; }
check "the store equals a rebuild of the log (cb replay --verify)" cb_wait_for 60 verify
# the figures: the longest pause between two successes in the job's log
"$CB" replay --broker "$URL" --job "cluster/$JOB" --store "$STORE" --json >"$DIR/map.jsonl" 2>/dev/null
/usr/bin/python3 - "$DIR/map.jsonl" "$t0" "$t_kill" "$t_end" "$(cat "$DIR/seqs")" <<'PY' || fails=$((fails + 1))
import datetime, json, sys
ts = lambda e: datetime.datetime.fromisoformat(e["time"].replace("Z", "+00:00")).timestamp()
done = set(); times = []
for line in open(sys.argv[1]):
    e = json.loads(line)
    ts_ = ts(e)
    if e["type"] == "cb.tasks.succeeded":
        done.update(t["task"] for t in e["data"]["tasks"]); times.append(ts_)
    elif e["type"] == "cb.task.succeeded":
        done.add(e["data"]["task"]); times.append(ts_)
assert len(done) == 10000, len(done)
times.sort()
gap, at = max((b - a, a) for a, b in zip(times, times[1:]))
t0, kill, end = (float(x) for x in sys.argv[2:5])
print("     figures: job %.1f s (10,000 x 100 ms, 64 at a time: 15.6 s of work); longest pause "
      "between successes %.1f s, starting %.1f s after the kill; log %s (last seq, events) on each node"
      % (end - t0, gap, at - kill, sys.argv[5].split()[:2]))
PY

if [ "$fails" -ne 0 ]; then
    echo "$fails checks failed; files kept in $DIR"
    tail -n 5 "$DIR"/*.log "$DIR"/*.err "$DIR"/.cb/logs/*.log 2>/dev/null
    exit 1
fi
echo "all checks passed"
