#!/bin/bash
# tools/brokers.sh - start and stop private nats-server and
# rabbitmq-server instances on loopback, free ports, temp dirs.
# Source it, then:
#   cb_nats_start DIR      sets CB_NATS_URL, CB_NATS_PID, CB_NATS_MON
#   cb_nats_stop / cb_nats_restart
#   cb_rabbit_start DIR    sets CB_AMQP_URL and the node's environment
#   cb_rabbit_stop
#   cb_brokers_stop_all    (install with: trap cb_brokers_stop_all EXIT)

# A free TCP port on loopback, below the kernel's range of ports for
# outgoing connections (32768-60999 on Linux): a port from that range can be
# taken by any connection a process makes before the server that was to
# listen on it starts (a RabbitMQ node's management listener failed so,
# "eaddrinuse"). Distinct for one shell (its $$): the ports handed out are
# listed in a file of it, and files of shells gone are removed.
cb_free_port() {
    python3 - "$$" <<'PY'
import os, random, socket, sys, tempfile
d = tempfile.gettempdir()
for f in os.listdir(d):
    if f.startswith("cb-ports.") and f[9:].isdigit() and not os.path.exists("/proc/" + f[9:]):
        try:
            os.unlink(os.path.join(d, f))
        except OSError:
            pass
mine = os.path.join(d, "cb-ports." + sys.argv[1])
try:
    taken = set(int(x) for x in open(mine).read().split())
except OSError:
    taken = set()
while True:
    port = random.randint(10000, 32000)
    if port in taken:
        continue
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        continue
    finally:
        s.close()
    break
with open(mine, "a") as f:
    f.write("%d\n" % port)
print(port)
PY
}

# Wait until `cmd` succeeds, at most $1 seconds (polling, bounded).
cb_wait_for() {
    local secs=$1
    shift
    local end=$((SECONDS + secs))
    until "$@" >/dev/null 2>&1; do
        if [ $SECONDS -ge $end ]; then return 1; fi
        sleep 0.05
    done
}

cb_port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Stop a server this shell started in the background (SIGTERM, reaped).
cb_stop_child() {
    [ -n "$1" ] || return 0
    kill "$1" 2>/dev/null
    wait "$1" 2>/dev/null
}

# `cmd` succeeds, or process `pid` has exited (a server that could not
# start is not waited for until the deadline).
cb_ready_or_gone() {
    local pid=$1
    shift
    "$@" || ! kill -0 "$pid" 2>/dev/null
}

cb_nats_launch() {
    nats-server -js -sd "$CB_NATS_DIR/data" -p "$CB_NATS_PORT" -a 127.0.0.1 \
        -m "$CB_NATS_MON" >>"$CB_NATS_DIR/server.log" 2>&1 &
    CB_NATS_PID=$!
    echo "$CB_NATS_PID" >"$CB_NATS_DIR/pid"
    cb_wait_for 10 cb_ready_or_gone "$CB_NATS_PID" \
        curl -sf --max-time 2 "http://127.0.0.1:$CB_NATS_MON/healthz?js-enabled-only=true" &&
        curl -sf --max-time 2 "http://127.0.0.1:$CB_NATS_MON/healthz?js-enabled-only=true" >/dev/null || {
        echo "nats-server did not become ready; log:" >&2
        tail -20 "$CB_NATS_DIR/server.log" >&2
        return 1
    }
}

cb_nats_start() {
    CB_NATS_DIR=$1
    mkdir -p "$CB_NATS_DIR/data"
    # a free port can be taken by another process before the server binds
    # it: then the server exits at once and the start is tried on others
    local attempt
    for attempt in 1 2 3; do
        CB_NATS_PORT=$(cb_free_port)
        CB_NATS_MON=$(cb_free_port)
        CB_NATS_URL="nats://127.0.0.1:$CB_NATS_PORT"
        export CB_NATS_URL CB_NATS_DIR CB_NATS_PORT CB_NATS_MON
        if cb_nats_launch; then
            export CB_NATS_PID
            return 0
        fi
        kill "$CB_NATS_PID" 2>/dev/null
        [ $attempt -lt 3 ] && echo "nats-server: trying other ports" >&2
    done
    return 1
}

# Stop the server (SIGTERM, or the signal given), whoever started it.
cb_nats_stop() {
    local sig=${1:-TERM} pid
    [ -n "${CB_NATS_DIR:-}" ] && [ -f "$CB_NATS_DIR/pid" ] || return 0
    pid=$(cat "$CB_NATS_DIR/pid")
    kill "-$sig" "$pid" 2>/dev/null
    cb_wait_for 20 cb_not_running "$pid"
    rm -f "$CB_NATS_DIR/pid"
}

cb_not_running() {
    ! kill -0 "$1" 2>/dev/null
}

# Kill the server hard and start it again on the same port and data dir.
cb_nats_restart() {
    cb_nats_stop KILL
    cb_nats_launch
}

cb_rabbit_env() {
    local d=$CB_RABBIT_DIR
    export HOME="$d/home" RABBITMQ_NODENAME="$CB_RABBIT_NODE" \
        RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 RABBITMQ_NODE_PORT="$CB_RABBIT_PORT" \
        RABBITMQ_DIST_PORT="$CB_RABBIT_DIST" ERL_EPMD_PORT="$CB_RABBIT_EPMD" \
        RABBITMQ_MNESIA_BASE="$d/mnesia" RABBITMQ_LOG_BASE="$d/log" \
        RABBITMQ_ENABLED_PLUGINS_FILE="$d/enabled_plugins" RABBITMQ_CONFIG_FILE="$d/rabbitmq" \
        RABBITMQ_PID_FILE="$d/rabbit.pid" ERL_CRASH_DUMP="$d/erl_crash.dump"
}

cb_rabbit_start() {
    CB_RABBIT_DIR=$1
    mkdir -p "$CB_RABBIT_DIR/home" "$CB_RABBIT_DIR/mnesia" "$CB_RABBIT_DIR/log"
    # as for nats: a port taken before the node binds it ("dist_port_already_used")
    # makes the node exit at once; the start is tried on other ports
    local attempt
    for attempt in 1 2 3; do
        cb_rabbit_try && return 0
        kill "$CB_RABBIT_PID" 2>/dev/null
        cb_rabbit_kill_epmd
        [ $attempt -lt 3 ] && echo "rabbitmq-server: trying other ports" >&2
    done
    return 1
}

# A CA and a server certificate for localhost and 127.0.0.1 in DIR (ca.pem,
# server.pem, server.key), for the brokers' TLS listeners in tests.
cb_test_certs() {
    local d=$1
    mkdir -p "$d" && chmod 700 "$d" &&
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
            -subj "/CN=cbcore test CA" -keyout "$d/ca.key" -out "$d/ca.pem" 2>/dev/null &&
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=localhost" \
            -keyout "$d/server.key" -out "$d/server.csr" 2>/dev/null &&
        printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\n' >"$d/san.ext" &&
        openssl x509 -req -in "$d/server.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" \
            -CAcreateserial -days 30 -extfile "$d/san.ext" -out "$d/server.pem" 2>/dev/null
}

cb_rabbit_try() {
    CB_RABBIT_PORT=$(cb_free_port)
    CB_RABBIT_DIST=$(cb_free_port)
    CB_RABBIT_EPMD=$(cb_free_port)
    CB_RABBIT_MGMT=$(cb_free_port)
    CB_RABBIT_TLS=$(cb_free_port)
    CB_RABBIT_NODE="cbtest$CB_RABBIT_PORT@localhost"
    [ -f "$CB_RABBIT_DIR/tls/server.pem" ] || cb_test_certs "$CB_RABBIT_DIR/tls" || return 1
    # the management plugin: its HTTP API is how cb up and cb tenant make
    # the stack's users and permissions (docs/security.md)
    echo '[rabbitmq_management].' >"$CB_RABBIT_DIR/enabled_plugins"
    cat >"$CB_RABBIT_DIR/rabbitmq.conf" <<CONF
loopback_users = none
log.console = false
log.file.level = warning
management.tcp.ip = 127.0.0.1
management.tcp.port = $CB_RABBIT_MGMT
listeners.ssl.default = 127.0.0.1:$CB_RABBIT_TLS
ssl_options.cacertfile = $CB_RABBIT_DIR/tls/ca.pem
ssl_options.certfile = $CB_RABBIT_DIR/tls/server.pem
ssl_options.keyfile = $CB_RABBIT_DIR/tls/server.key
ssl_options.verify = verify_none
ssl_options.fail_if_no_peer_cert = false
CONF
    CB_AMQP_URL="amqp://guest:guest@127.0.0.1:$CB_RABBIT_PORT/"
    CB_RABBITMQ_API="http://127.0.0.1:$CB_RABBIT_MGMT"
    # AMQP over TLS: verified with CB_RABBIT_CA_FILE against the name localhost
    CB_AMQPS_URL="amqps://guest:guest@localhost:$CB_RABBIT_TLS/"
    CB_RABBIT_CA_FILE="$CB_RABBIT_DIR/tls/ca.pem"
    export CB_AMQP_URL CB_RABBIT_DIR CB_RABBIT_PORT CB_RABBIT_DIST CB_RABBIT_EPMD CB_RABBIT_NODE \
        CB_RABBIT_MGMT CB_RABBITMQ_API CB_RABBIT_TLS CB_AMQPS_URL CB_RABBIT_CA_FILE
    cb_rabbit_launch
}

cb_rabbit_launch() {
    (
        cb_rabbit_env
        exec /usr/lib/rabbitmq/bin/rabbitmq-server >>"$CB_RABBIT_DIR/server.out" 2>&1
    ) &
    CB_RABBIT_PID=$!
    export CB_RABBIT_PID
    cb_wait_for 60 cb_ready_or_gone "$CB_RABBIT_PID" cb_port_open "$CB_RABBIT_PORT" &&
        cb_port_open "$CB_RABBIT_PORT" &&
        cb_wait_for 30 cb_ready_or_gone "$CB_RABBIT_PID" cb_port_open "$CB_RABBIT_MGMT" &&
        cb_wait_for 30 cb_ready_or_gone "$CB_RABBIT_PID" cb_port_open "$CB_RABBIT_TLS" || {
        echo "rabbitmq-server did not become ready; log:" >&2
        tail -30 "$CB_RABBIT_DIR/server.out" >&2
        return 1
    }
}

cb_rabbit_ctl() {
    (cb_rabbit_env && /usr/lib/rabbitmq/bin/rabbitmqctl -n "$CB_RABBIT_NODE" "$@")
}

cb_rabbit_stop() {
    [ -n "${CB_RABBIT_DIR:-}" ] && [ -f "$CB_RABBIT_DIR/rabbit.pid" ] || return 0
    local pid
    pid=$(cat "$CB_RABBIT_DIR/rabbit.pid")
    cb_rabbit_ctl stop "$CB_RABBIT_DIR/rabbit.pid" >/dev/null 2>&1 || kill "$pid" 2>/dev/null
    cb_wait_for 30 cb_not_running "$pid" || kill -9 "$pid" 2>/dev/null
    rm -f "$CB_RABBIT_DIR/rabbit.pid"
}

cb_rabbit_restart() {
    cb_rabbit_stop
    cb_rabbit_launch
}

cb_rabbit_kill_epmd() {
    # epmd outlives the node; end the one serving our private port.
    local p
    for p in $(pgrep -x epmd 2>/dev/null); do
        if tr '\0' ' ' <"/proc/$p/environ" 2>/dev/null | grep -q "ERL_EPMD_PORT=$CB_RABBIT_EPMD"; then
            kill "$p" 2>/dev/null
        fi
    done
}

cb_brokers_stop_all() {
    cb_nats_stop
    if [ -n "${CB_RABBIT_DIR:-}" ]; then
        cb_rabbit_stop
        cb_rabbit_kill_epmd
    fi
}

# As a command (used by `cb bench` and the dev tools):
#   tools/brokers.sh start nats|amqp DIR   prints the URL; the server keeps running
#   tools/brokers.sh stop nats|amqp DIR
if [ "${BASH_SOURCE[0]}" = "$0" ]; then
    set -u
    what=${1:-}
    driver=${2:-}
    dir=${3:-}
    if [ -z "$dir" ]; then
        echo "usage: $0 start|stop nats|amqp DIR" >&2
        exit 2
    fi
    case "$what $driver" in
    "start nats")
        cb_nats_start "$dir/nats" >&2 || exit 1
        declare -p CB_NATS_DIR CB_NATS_PORT CB_NATS_MON CB_NATS_URL >"$dir/nats.env"
        echo "$CB_NATS_URL"
        ;;
    "stop nats")
        . "$dir/nats.env" && cb_nats_stop
        ;;
    "start amqp")
        cb_rabbit_start "$dir/rabbit" >&2 || exit 1
        declare -p CB_RABBIT_DIR CB_RABBIT_PORT CB_RABBIT_DIST CB_RABBIT_EPMD CB_RABBIT_NODE \
            CB_RABBIT_MGMT CB_RABBITMQ_API CB_RABBIT_TLS CB_AMQPS_URL CB_RABBIT_CA_FILE \
            CB_AMQP_URL >"$dir/amqp.env"
        echo "$CB_AMQP_URL"
        ;;
    "stop amqp")
        . "$dir/amqp.env" && cb_rabbit_stop && cb_rabbit_kill_epmd
        ;;
    *)
        echo "usage: $0 start|stop nats|amqp DIR" >&2
        exit 2
        ;;
    esac
fi
