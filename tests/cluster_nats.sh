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
. "$ROOT/tests/cluster_lib.sh"
cluster_bench nats # CB_CLUSTER_BENCH: figures instead of the tests

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

# ---- node failure (tests/cluster_lib.sh)
node_leading() { # the node that leads stream $1, as a live node reports it
    local i
    for i in 1 2 3; do
        curl -sf --max-time 2 "http://127.0.0.1:${mon[$i]}/jsz?streams=true" |
            /usr/bin/python3 -c '
import json, sys
for a in json.load(sys.stdin).get("account_details", []):
    for s in a.get("stream_detail", []):
        if s["name"] == sys.argv[1] and s.get("cluster", {}).get("leader"):
            print(s["cluster"]["leader"][1:]); sys.exit(0)
sys.exit(1)' "$1" && return 0
    done
    return 1
}
node_kill() {
    kill -9 "${npid[$1]}"
    wait "${npid[$1]}" 2>/dev/null
}
node_start() {
    nats-server -c "$DIR/n$1.conf" >>"$DIR/n$1.log" 2>&1 &
    npid[$1]=$!
    pids+=($!)
    cb_wait_for 60 curl -sf "http://127.0.0.1:${mon[$1]}/healthz"
}
log_agrees() { # CB_EVENTS's last sequence and event count: the same on each node
    local i out=""
    for i in 1 2 3; do
        out="$out $(curl -sf --max-time 2 "http://127.0.0.1:${mon[$i]}/jsz?streams=true" | /usr/bin/python3 -c '
import json, sys
for a in json.load(sys.stdin).get("account_details", []):
    for s in a.get("stream_detail", []):
        if s["name"] == "CB_EVENTS": print("%d/%d" % (s["state"]["last_seq"], s["state"]["messages"]))')"
    done
    echo "$out (last sequence/events)" >"$DIR/seqs"
    /usr/bin/python3 -c 'import sys; w=sys.argv[1].split(); assert len(w)==3 and len(set(w))==1' "$out"
}
cluster_node_failure CB_EVENTS

# ---- cb up --cluster 3: a private JetStream cluster for trying this out
C3="$DIR/c3"
"$CB" up --cluster 3 --detach --dir "$C3" >"$DIR/c3.out" 2>"$DIR/c3.err"
check "cb up --cluster 3 starts a stack on three nodes of its own" test $? -eq 0
c3() { env -u CB_BROKER_URL -u CB_BROKER_PASSWORD_FILE CB_DIR="$C3" "$@"; }
check "its broker URL lists the three nodes" \
    test "$(tr ',' '\n' <"$C3/url" | grep -c '^nats://cb-admin@127.0.0.1:')" -eq 3
doctor3() { c3 "$CB" doctor --json >"$1" 2>"$1.err"; }
check "cb doctor answers" cb_wait_for 60 doctor3 "$DIR/doctor3.json"
check "its streams have three replicas, a quorum current (read from the server)" \
    /usr/bin/python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))["broker"]["durability"]; assert d["replicas"]==3 and d["peers"]>=2, d' "$DIR/doctor3.json"
submit3() { c3 "$CB" submit --wait --timeout 30 "$DIR/job.json" >"$DIR/job3.out" 2>&1 &&
    grep -q '"result":42' "$DIR/job3.out"; }
check "a job runs on it" cb_wait_for 60 submit3
kill -9 "$(cat "$C3/nats2.pid")"
restarted() { grep -q "nats2 exited" "$C3/logs/up.log"; }
check "kill -9 of a node: cb up starts it again" cb_wait_for 30 restarted
check "a job runs after it (a submission met during an election is refused: again)" \
    cb_wait_for 60 submit3
c3 "$CB" tenant add alice >"$DIR/alice.env" 2>"$DIR/alice.err"
check "a tenant's URL lists the three nodes too" \
    test "$(grep CB_BROKER_URL "$DIR/alice.env" | tr ',' '\n' | grep -c '127.0.0.1:')" -eq 3
node_pids="$(cat "$C3"/nats*.pid)"
c3 "$CB" down >/dev/null 2>&1
gone() { for p in $node_pids; do kill -0 "$p" 2>/dev/null && return 1; done; return 0; }
check "cb down stops the three nodes" cb_wait_for 30 gone

if [ "$fails" -ne 0 ]; then
    echo "$fails checks failed; files kept in $DIR"
    tail -n 5 "$DIR"/*.log "$DIR"/*.err "$DIR"/.cb/logs/*.log 2>/dev/null
    exit 1
fi
echo "all checks passed"
