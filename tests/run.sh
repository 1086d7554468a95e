#!/bin/bash
# tests/run.sh BUILD [unit|integration|all] - run the test suites.
# Unit tests need nothing. Integration tests start a private nats-server and
# rabbitmq-server (tools/brokers.sh), run every tests/it_* binary once
# per driver, and always stop the servers. Prints "N passed, N failed" last.
set -u
BUILD=${1:-build}
WHAT=${2:-all}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT" || exit 2
. tools/brokers.sh

passed=0
failed=0
failures=()
times=() # "N s  name" per suite, the slowest listed at the end
failed_logs=()
LOGS=$(mktemp -d /tmp/cblogs.XXXXXX)
trap 'rm -rf "$LOGS"' EXIT

run_one() { # name command...
    local name=$1
    shift
    # CB_TEST_ONLY="it_broker it_engine": run only those (make tsan)
    if [ -n "${CB_TEST_ONLY:-}" ] && [[ " $CB_TEST_ONLY " != *" ${name%% *} "* ]]; then
        return 0
    fi
    echo "=== $name"
    local t0=$SECONDS log
    log="$LOGS/$(printf '%03d' $((passed + failed))).log"
    # a copy of its output, shown again at the end if it fails (a CI
    # report may keep only the end)
    if "$@" > >(tee "$log") 2>&1; then
        passed=$((passed + 1))
        times+=("$((SECONDS - t0)) s  $name")
    else
        failed=$((failed + 1))
        failures+=("$name")
        failed_logs+=("$log")
        times+=("$((SECONDS - t0)) s  $name (failed)")
    fi
}

if [ "$WHAT" = unit ] || [ "$WHAT" = all ]; then
    for t in "$BUILD"/tests/test_*; do
        [ -x "$t" ] || continue
        run_one "$(basename "$t")" "$t"
    done
    run_one "dependency rules (tools/check_layers.py)" tests/check_layers_test.sh
    for t in "$BUILD"/tests/replay_*; do
        [ -x "$t" ] || continue
        seeds=(schemas/examples/*/*.json)
        own="tests/fuzz/seeds/fuzz_$(basename "$t" | sed 's/^replay_fuzz_//')"
        [ -d "$own" ] && seeds+=("$own"/*)
        run_one "$(basename "$t") (fuzz seeds)" "$t" "${seeds[@]}"
    done
fi

# Each suite on a broker state of its own, so that a stack it starts does
# not first read every earlier suite's events: on RabbitMQ that took
# minutes by the end of a run, and on NATS a fresh engine was still folding
# the log 20 s after cb up (it decides only once it has caught up).
# RabbitMQ: a virtual host per suite (its exchange, queues and streams),
# dropped after it. NATS: the server started afresh, data wiped, before
# each suite (half a second).
fresh_nats() { # TEST
    [ -n "${CB_TEST_ONLY:-}" ] && [[ " $CB_TEST_ONLY " != *" $(basename "$1") "* ]] && return 0
    cb_nats_stop
    rm -rf "$TMP/nats"
    if cb_nats_start "$TMP/nats"; then
        export CB_TEST_BROKER_URL=$CB_NATS_URL
    else
        echo "could not start a fresh nats-server" >&2
    fi
}
VHOST=
vhost_for() { # TEST: CB_TEST_BROKER_URL on a fresh virtual host (0), or 1
    [ -n "${CB_TEST_ONLY:-}" ] && [[ " $CB_TEST_ONLY " != *" $(basename "$1") "* ]] && return 1
    VHOST="cbt$((passed + failed))"
    cb_rabbit_ctl add_vhost "$VHOST" >/dev/null 2>&1 &&
        cb_rabbit_ctl set_permissions -p "$VHOST" guest ".*" ".*" ".*" >/dev/null 2>&1 || {
        echo "could not make the virtual host $VHOST: the suite runs on /" >&2
        CB_TEST_BROKER_URL=$CB_AMQP_URL
        return 0
    }
    export CB_TEST_BROKER_URL="${CB_AMQP_URL%/}/$VHOST"
}

# NAME LABEL CMD...: CMD on a broker state of its own ($driver's; NAME as
# CB_TEST_ONLY names it), reported as LABEL
on_fresh_broker() {
    local name=$1 label=$2
    shift 2
    if [ "$driver" = amqp ] && vhost_for "$name"; then
        run_one "$label" "$@"
        cb_rabbit_ctl delete_vhost "$VHOST" >/dev/null 2>&1
    else
        [ "$driver" = nats ] && fresh_nats "$name"
        run_one "$label" "$@"
    fi
}

partitioned() { # TEST NAME P WHAT: TEST again on a log of P partitions
    [ -x "$1" ] || return 0
    export CB_TEST_PARTITIONS=$3
    on_fresh_broker "$2" "$2 [$4]" "$1"
    unset CB_TEST_PARTITIONS
}

if [ "$WHAT" = integration ] || [ "$WHAT" = all ]; then
    TMP=$(mktemp -d /tmp/cbtest.XXXXXX)
    trap 'cb_brokers_stop_all; rm -rf "$TMP" "$LOGS"' EXIT
    trap 'exit 130' INT TERM
    run_one "schemas agree with python3-jsonschema" \
        /usr/bin/python3 tests/schema_agree.py "$BUILD/bin/cb" schemas
    run_one "docker-compose.yml parses" /usr/bin/python3 tests/check_compose.py docker-compose.yml
    # The third-party peers (serverless-offline, the cloudevents SDK,
    # s3rver): npm packages pinned by tests/peers/package-lock.json.
    if [ ! -d tests/peers/node_modules/serverless-offline ] ||
        [ ! -d tests/peers/node_modules/s3rver ]; then
        echo "installing the test peers (npm ci in tests/peers)"
        (cd tests/peers && npm ci --no-audit --no-fund >/dev/null) ||
            echo "npm ci in tests/peers failed: it_remote will fail" >&2
    fi
    # object storage needs no broker: once, both drivers (file, s3rver)
    CB_TEST_CB="$ROOT/$BUILD/bin/cb" run_one "st_storage.sh [file, s3rver]" tests/st_storage.sh
    echo "starting nats-server and rabbitmq-server in $TMP"
    if ! cb_nats_start "$TMP/nats" || ! cb_rabbit_start "$TMP/rabbit"; then
        echo "could not start the brokers" >&2
        failed=$((failed + 1))
        failures+=("broker start")
    else
        export CB_TEST_HELPER_WORKER="$ROOT/$BUILD/tests/helper_worker"
        export CB_TEST_PROJECTOR="$ROOT/$BUILD/bin/cb-projector"
        export CB_TEST_CB="$ROOT/$BUILD/bin/cb"
        export CB_TEST_BIN="$ROOT/$BUILD/bin"
        for driver in nats amqp; do
            if [ $driver = nats ]; then
                export CB_TEST_BROKER_URL=$CB_NATS_URL CB_TEST_BROKER_DATA="$TMP/nats"
                export CB_TEST_RESTART_CMD=". '$ROOT/tools/brokers.sh' && cb_nats_restart"
            else
                export CB_TEST_BROKER_URL=$CB_AMQP_URL CB_TEST_BROKER_DATA="$TMP/rabbit"
                export CB_TEST_RESTART_CMD=". '$ROOT/tools/brokers.sh' && cb_rabbit_restart"
                # an Erlang expression on the node (it_broker: a server-closed channel)
                export CB_TEST_RABBIT_EVAL=". '$ROOT/tools/brokers.sh' && cb_rabbit_ctl eval"
            fi
            export CB_TEST_DRIVER=$driver
            for t in "$BUILD"/tests/it_* tests/it_*.sh; do
                [ -x "$t" ] || continue
                on_fresh_broker "$(basename "$t")" "$(basename "$t") [$driver]" "$t"
            done
            # the engine's tests again on a log of 4 partitions shared with
            # failover by two engines with names (docs/scale.md;
            # CB_TEST_ENGINES=1: one engine drives the four); the SLA
            # evaluator's on 3 partitions; CB_TEST_ONLY="it_engine_p4" or
            # "it_sla_p3" picks these runs
            export CB_TEST_ENGINES="${CB_TEST_ENGINES:-2}"
            partitioned "$BUILD/tests/it_engine" it_engine_p4 4 \
                "$driver, 4 partitions, $CB_TEST_ENGINES engine(s)"
            partitioned tests/it_sla.sh it_sla_p3 3 "$driver, 3 partitions"
        done
        # once each, on clusters of their own: stream replicas are never
        # lowered; kill -9 of the log's leader node during a 10,000-task map
        run_one "cluster_nats.sh [3-node nats, node failure]" tests/cluster_nats.sh
        run_one "cluster_rabbit.sh [3-node RabbitMQ, node failure]" tests/cluster_rabbit.sh
        # once: a cb up stack with its own nats-server and its users
        run_one "sec_nats.sh [cb up's nats-server with users]" tests/sec_nats.sh
        # once: a cb up stack on RabbitMQ with a user per part and tenant
        if vhost_for tests/sec_amqp.sh; then
            CB_TEST_DRIVER=amqp run_one "sec_amqp.sh [RabbitMQ users]" tests/sec_amqp.sh
            cb_rabbit_ctl delete_vhost "$VHOST" >/dev/null 2>&1
        fi
        # once: cb up --tls (its own nats-server, cb-api HTTPS) and AMQPS
        if vhost_for tests/sec_tls.sh; then
            run_one "sec_tls.sh [TLS: nats-server, RabbitMQ, cb-api]" tests/sec_tls.sh
            cb_rabbit_ctl delete_vhost "$VHOST" >/dev/null 2>&1
        fi
    fi
fi

echo
if [ ${#times[@]} -gt 0 ]; then
    echo "slowest suites:"
    printf '%s\n' "${times[@]}" | sort -rn | head -12 | sed 's/^/  /'
fi
for i in "${!failures[@]}"; do
    echo "--- ${failures[$i]}: the end of its output"
    tail -n 40 "${failed_logs[$i]}"
done
rm -rf "$LOGS"
for f in "${failures[@]}"; do echo "FAILED: $f"; done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
