# tests/cluster_lib.sh - the node failure both clustered brokers go through
# (sourced by tests/cluster_nats.sh and tests/cluster_rabbit.sh, not run).
#
# cluster_node_failure LOG: a `cb up` stack runs on a 3-node cluster; while a
# 10,000-task map runs, kill -9 the node that leads LOG (the log's stream or
# stream queue), let the job go on without it, start the node again; the job
# ends with every output exactly once, no daemon was restarted (each
# reconnected by itself), the nodes hold the same log again and the store
# equals a rebuild of the log. Prints what stalled, and how long.
#
# The caller sets CB, DIR (the stack is DIR/.cb), URL and `fails`, has
# `check` and `cb_wait_for`, and defines:
#   node_leading LOG   prints the leading node's number (1..3)
#   node_kill K        kill -9 node K (and reap it)
#   node_start K       start node K again; returns once it serves clients
#   log_agrees         0 when the three nodes hold the same log; writes what
#                      each holds to $DIR/seqs

# cluster_bench DRIVER: figures, not checks. With CB_CLUSTER_BENCH="1 2 4"
# in the environment, instead of its tests the script runs `cb bench
# fanout` across the cluster (its streams at 3 replicas) once for each
# number of partitions, prints one line of figures per number and exits
# (CB_CLUSTER_BENCH_N tasks, default 100,000; CB_CLUSTER_BENCH_RUNS, default
# 3). Without it: nothing. docs/scale.md has the figures.
cluster_bench() {
    [ -n "${CB_CLUSTER_BENCH:-}" ] || return 0
    local p rc=0
    for p in $CB_CLUSTER_BENCH; do
        if ! env -u CB_RABBITMQ_API "$CB" bench fanout --broker "$1" --url "$URL" --replicas 3 \
            --partitions "$p" --n "${CB_CLUSTER_BENCH_N:-100000}" \
            --runs "${CB_CLUSTER_BENCH_RUNS:-3}" --json >"$DIR/bench-p$p.json" 2>"$DIR/bench-p$p.err"; then
            echo "cb bench fanout --partitions $p failed:"; tail -5 "$DIR/bench-p$p.err"; rc=1
            continue
        fi
        /usr/bin/python3 - "$DIR/bench-p$p.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
f, r = d["figures"], d["resources"]
print(json.dumps({"broker": d["broker"], "nodes": 3, "partitions": d["partitions"],
                  "n": d["n"], "runs": d["runs"], "tasks_per_s": round(f["tasks_per_s"]),
                  "min": round(f["min"]), "max": round(f["max"]),
                  "latency_ms": f.get("latency_ms"),
                  "append_per_s": round(d["broker_limit"]["append_per_s"]),
                  "replicas": d["broker_limit"]["server"].get("durability", {}).get("replicas"),
                  "cbcore_cpu_s": round(sum(v["cpu_s"] for k, v in r.items() if isinstance(v, dict)), 1)}))
PY
    done
    fails=$rc
    exit $rc
}

# succeeded: how many of the map's tasks the store shows succeeded.
cluster_succeeded() {
    "$CB" status "cluster/$JOB" --store "$DIR/.cb/store" --json 2>/dev/null |
        /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["tasks"]["succeeded"])'
}
cluster_past() { [ "$(cluster_succeeded)" -ge "$1" ] 2>/dev/null; }
cluster_submit_map() { CB_BROKER_URL=$URL "$CB" submit "$DIR/map.json" >"$DIR/map.id" 2>"$DIR/map.err"; }
cluster_verify() { "$CB" replay --broker "$URL" --verify --store "$DIR/.cb/store" >"$DIR/verify.out" 2>&1; }

cluster_node_failure() {
    local log=$1 restarts t0 k at_kill t_kill t_end
    /usr/bin/python3 -c '
import json
print(json.dumps({"tenant": "cluster", "kind": "map", "function": {"backend": "local", "name": "sleep_ms"},
                  "input": {"items": [{"ms": 100, "i": i} for i in range(10000)]}}))' >"$DIR/map.json"
    restarts=$(grep -c "exited" "$DIR/.cb/logs/up.log")
    t0=$(date +%s.%N)
    check "a 10,000-task map is submitted" cb_wait_for 60 cluster_submit_map
    JOB=$(cat "$DIR/map.id")
    check "it runs (1,000 tasks succeeded)" cb_wait_for 120 cluster_past 1000
    k=$(node_leading "$log")
    check "the log ($log) has a leader" test -n "$k"
    [ -n "$k" ] || return 1
    at_kill=$(cluster_succeeded)
    node_kill "$k"
    t_kill=$(date +%s.%N)
    echo "     kill -9 of node $k (leader of $log) after $at_kill tasks"
    check "the job goes on without node $k" cb_wait_for 120 cluster_past $((at_kill + 1000))
    check "node $k is back" node_start "$k"
    "$CB" result "cluster/$JOB" --store "$DIR/.cb/store" --broker "$URL" --timeout 300 \
        >"$DIR/map.out" 2>"$DIR/map.rerr"
    t_end=$(date +%s.%N)
    check "the job ends with every output exactly once, in order" /usr/bin/python3 -c '
import json, sys
r = json.load(open(sys.argv[1]))
assert r == [{"ms": 100, "i": i} for i in range(10000)], str(r)[:300]' "$DIR/map.out"
    check "no daemon of the stack was restarted: each reconnected by itself" \
        test "$(grep -c "exited" "$DIR/.cb/logs/up.log")" -eq "$restarts"
    check "the three nodes hold the same log again" cb_wait_for 120 log_agrees
    check "the store equals a rebuild of the log (cb replay --verify)" cb_wait_for 60 cluster_verify
    # the figures: the longest pause between two successes in the job's log
    "$CB" replay --broker "$URL" --job "cluster/$JOB" --store "$DIR/.cb/store" --json \
        >"$DIR/map.jsonl" 2>/dev/null
    /usr/bin/python3 - "$DIR/map.jsonl" "$t0" "$t_kill" "$t_end" "$(cat "$DIR/seqs" 2>/dev/null)" <<'PY' ||
import datetime, json, sys
done = set(); times = []
for line in open(sys.argv[1]):
    e = json.loads(line)
    t = datetime.datetime.fromisoformat(e["time"].replace("Z", "+00:00")).timestamp()
    if e["type"] == "cb.tasks.succeeded":
        done.update(x["task"] for x in e["data"]["tasks"]); times.append(t)
    elif e["type"] == "cb.task.succeeded":
        done.add(e["data"]["task"]); times.append(t)
assert len(done) == 10000, len(done)
times.sort()
gap, at = max((b - a, a) for a, b in zip(times, times[1:]))
t0, kill, end = (float(x) for x in sys.argv[2:5])
print("     figures: the job took %.1f s (10,000 x 100 ms, 64 at a time: 15.6 s of work); the "
      "longest pause between successes %.1f s, from %.1f s after the kill; the log on each node: %s"
      % (end - t0, gap, at - kill, sys.argv[5]))
PY
        { echo "FAIL the job's log names every task's success"; fails=$((fails + 1)); }
}
