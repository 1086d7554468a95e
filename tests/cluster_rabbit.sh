#!/usr/bin/env bash
# tests/cluster_rabbit.sh - a 3-node RabbitMQ cluster on loopback (run once by
# tests/run.sh): three private nodes (one Erlang cookie, one epmd port) join
# one cluster; a `cb up` stack connects with the list of the three nodes'
# URLs; its log (stream queue cb.events) and work queues (quorum queues)
# have a member on each node; a job runs. Then a node failure: kill -9 of
# the node that leads cb.events during a 10,000-task map, and its restart
# (tests/cluster_lib.sh; docs/broker.md "Node failure").
# Needs CB_TEST_BIN.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CB="$CB_TEST_BIN/cb"
DIR=$(mktemp -d /tmp/cbrcluster.XXXXXX)
. "$ROOT/tools/brokers.sh"
. "$ROOT/tests/lib.sh"
EPMD=$(cb_free_port)
COOKIE=cbtest$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')
declare -a port dist mgmt nodename # (not "name": check() has a local of that name)
for k in 1 2 3; do
    port[$k]=$(cb_free_port)
    dist[$k]=$(cb_free_port)
    mgmt[$k]=$(cb_free_port)
    nodename[$k]="cb$k-${port[$k]}@localhost"
done

# node K's environment for tools/brokers.sh's cb_rabbit_env
node_vars() {
    CB_RABBIT_DIR="$DIR/r$1" CB_RABBIT_PORT=${port[$1]} CB_RABBIT_DIST=${dist[$1]}
    CB_RABBIT_EPMD=$EPMD CB_RABBIT_NODE=${nodename[$1]}
}
tool() { # tool K PROGRAM ARGS...: a RabbitMQ CLI (rabbitmqctl, rabbitmq-streams) on node K
    local k=$1 prog=$2
    shift 2
    (node_vars "$k" && cb_rabbit_env && "/usr/lib/rabbitmq/bin/$prog" -n "${nodename[$k]}" "$@")
}
ctl() {
    local k=$1
    shift
    tool "$k" rabbitmqctl "$@"
}
node_pid() { cat "$DIR/r$1/rabbit.pid" 2>/dev/null; }
node_launch() {
    (node_vars "$1" && cb_rabbit_env &&
        exec /usr/lib/rabbitmq/bin/rabbitmq-server >>"$DIR/r$1/server.out" 2>&1) &
}
node_ready() { cb_port_open "${port[$1]}" && cb_port_open "${mgmt[$1]}"; }

stop() {
    "$CB" down --dir "$DIR/.cb" >/dev/null 2>&1
    for k in 1 2 3; do
        p=$(node_pid "$k")
        [ -n "$p" ] && kill "$p" 2>/dev/null
    done
    for k in 1 2 3; do
        p=$(node_pid "$k")
        [ -n "$p" ] && { cb_wait_for 30 cb_not_running "$p" || kill -9 "$p" 2>/dev/null; }
    done
    CB_RABBIT_EPMD=$EPMD cb_rabbit_kill_epmd
    [ "$fails" -eq 0 ] && rm -rf "$DIR"
}
trap stop EXIT
trap 'exit 130' INT TERM

for k in 1 2 3; do
    d="$DIR/r$k"
    mkdir -p "$d/home" "$d/mnesia" "$d/log"
    printf '%s' "$COOKIE" >"$d/home/.erlang.cookie"
    chmod 400 "$d/home/.erlang.cookie"
    echo '[rabbitmq_management].' >"$d/enabled_plugins"
    cat >"$d/rabbitmq.conf" <<CONF
loopback_users = none
log.console = false
log.file.level = warning
management.tcp.ip = 127.0.0.1
management.tcp.port = ${mgmt[$k]}
CONF
    node_launch "$k"
done
for k in 1 2 3; do
    if ! cb_wait_for 90 node_ready "$k"; then
        echo "FAIL node $k did not start"
        tail -20 "$DIR/r$k/server.out" "$DIR/r$k/log/"*.log
        fails=1
        exit 1
    fi
done
# nodes 2 and 3 join node 1's cluster
for k in 2 3; do
    ctl "$k" stop_app >/dev/null && ctl "$k" join_cluster "${nodename[1]}" >/dev/null &&
        ctl "$k" start_app >/dev/null
    check "node $k joins the cluster" test $? -eq 0
done
running() {
    ctl 1 cluster_status --formatter json >"$DIR/status.json" 2>&1 && /usr/bin/python3 -c '
import json, sys
assert len(json.load(open(sys.argv[1]))["running_nodes"]) == 3' "$DIR/status.json"
}
check "the cluster runs three nodes" cb_wait_for 60 running
URL="amqp://guest:guest@127.0.0.1:${port[1]}/,amqp://guest:guest@127.0.0.1:${port[2]}/,amqp://guest:guest@127.0.0.1:${port[3]}/"
. "$ROOT/tests/cluster_lib.sh"
cluster_bench amqp # CB_CLUSTER_BENCH: figures instead of the tests

printf '{"backends": {"local": {}}}' >"$DIR/cb.json"
"$CB" up --detach --dir "$DIR/.cb" --broker "$URL" --config "$DIR/cb.json" \
    --rabbitmq-api "http://127.0.0.1:${mgmt[1]}" >/dev/null 2>"$DIR/up.err"
check "a cb up stack starts on the cluster (a list of the nodes' URLs; a user per part)" test $? -eq 0

queue() { # queue NAME: the queue's record from the management API of a live node
    local k
    for k in 1 2 3; do
        curl -sf --max-time 2 -u guest:guest "http://127.0.0.1:${mgmt[$k]}/api/queues/%2F/$1" &&
            return 0
    done
    return 1
}
members3() {
    local q
    for q in cb.events cb.submit cb.invoke.local; do
        queue "$q" | /usr/bin/python3 -c '
import json, sys
q = json.load(sys.stdin)
assert len(q.get("members", [])) == 3, (q["name"], q.get("members"))' || return 1
    done
}
check "the log and the work queues have a member on each node" cb_wait_for 60 members3
printf '{"tenant": "cluster", "kind": "call", "function": {"backend": "local", "name": "echo"}, "input": 42}' >"$DIR/job.json"
submit() { CB_BROKER_URL=$URL "$CB" submit --wait --timeout 60 "$DIR/job.json" >"$DIR/job.out" 2>&1; }
cb_wait_for 120 submit
check "a job runs on the cluster" grep -q '"result":42' "$DIR/job.out"

# ---- node failure (tests/cluster_lib.sh)
node_leading() { # the node that leads queue $1
    local leader k
    queue "$1" >"$DIR/leader.json"
    leader=$(/usr/bin/python3 -c 'import json,sys; q = json.load(open(sys.argv[1])); print(q.get("leader") or q.get("node", ""))' "$DIR/leader.json")
    for k in 1 2 3; do [ "$leader" = "${nodename[$k]}" ] && echo "$k" && return 0; done
    return 1
}
node_kill() {
    kill -9 "$(node_pid "$1")"
}
node_start() {
    node_launch "$1"
    cb_wait_for 90 node_ready "$1"
}
log_agrees() { # cb.events's members, each at the same offset, all of it committed
    local k
    for k in 1 2 3; do
        tool "$k" rabbitmq-streams stream_status cb.events --formatter json >"$DIR/stream.json" \
            2>/dev/null && break
    done
    /usr/bin/python3 - "$DIR/stream.json" "$DIR/seqs" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
seen = sorted({(x["offset"], x["committed_offset"]) for x in m})
open(sys.argv[2], "w").write("%d members at (offset, committed) %s" % (len(m), seen))
assert len(m) == 3 and len(seen) == 1 and seen[0][0] == seen[0][1], m
PY
}
cluster_node_failure cb.events

if [ "$fails" -ne 0 ]; then
    echo "$fails checks failed; files kept in $DIR"
    tail -n 5 "$DIR"/*.err "$DIR"/.cb/logs/*.log 2>/dev/null
    exit 1
fi
echo "all checks passed"
