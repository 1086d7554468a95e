#!/usr/bin/env bash
# tools/compose-test.sh - the compose stack built and run for real (`make
# compose-test`; README "Docker"). With podman (Docker's own engine is not
# needed) and docker-compose talking to podman's Docker-compatible socket:
#   1. a debian:12 base image: the local one, else pulled, else made with
#      debootstrap from Debian's mirror and imported;
#   2. the images built from the Dockerfile (cbcore, cbcore-nats,
#      cbcore-rabbitmq) by `docker-compose build`, their sizes printed;
#   3. the stack up (NATS profile): every service healthy;
#   4. the demo job (map_reduce, result 42) from the host through the
#      published NATS port, and from a client container on the stack's
#      network; a 10,000-item map through the published API port;
#   5. kill -9 of the engine container's process while a job runs: the
#      restart policy brings it back and the job completes, every output
#      once;
#   6. down + up: a finished job's result is still there (named volumes);
#   7. the RabbitMQ profile: the demo job on a stack whose broker is
#      RabbitMQ;
#   8. down -v and the images removed: nothing it made is left.
# Needs root (podman as root, ../shared/ENV.md "Containers"); installs
# podman, runc, docker-compose and debootstrap with apt-get when missing.
# CB_COMPOSE_KEEP=1 keeps the images (a second run then skips the builds).
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
CB=${CB_COMPOSE_CB:-$ROOT/build/bin/cb}
WORK=$(mktemp -d /tmp/cbcompose.XXXXXX)
P=cbct$$ # the compose project: its containers, network and volumes (names begin cbct)
P_FIRST=$P
PY=/usr/bin/python3
T0=$(date +%s)
fails=0
SERVICE_PID=
TICKER_PID=
BASE_MADE=0
PROFILE_R=

say() { printf '%s [%4ss] %s\n' "==" "$(($(date +%s) - T0))" "$*"; }
check() { # check NAME COMMAND...
    local name=$1
    shift
    if "$@"; then echo "ok   $name"; else echo "FAIL $name"; fails=$((fails + 1)); fi
}
# bounded wait: wait_for SECONDS COMMAND...
wait_for() {
    local end=$(($(date +%s) + $1))
    shift
    until "$@" >/dev/null 2>&1; do
        [ "$(date +%s)" -ge "$end" ] && return 1
        sleep 0.5
    done
}
free_port() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

if [ "$(id -u)" -ne 0 ]; then
    echo "compose-test: podman runs the containers as root here; run it as root" >&2
    exit 2
fi
[ -x "$CB" ] || { echo "compose-test: $CB missing (make first)" >&2; exit 2; }
"$ROOT/tools/deps.sh" --compose || exit 1

# podman on these machines (../shared/ENV.md): runc, cgroupfs, ulimits
# within the machine's hard limits; every setting in one file
cat >"$WORK/containers.conf" <<'C'
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=1000:1000"]
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
C
export CONTAINERS_CONF="$WORK/containers.conf"
export DOCKER_HOST="unix://$WORK/podman.sock"
compose() { docker-compose -p "$P" --project-directory "$ROOT" -f "$ROOT/docker-compose.yml" "$@"; }

cleanup() {
    say "cleaning up"
    compose --profile rabbitmq --profile client down -v --remove-orphans >"$WORK/down.log" 2>&1
    # and whatever compose could not remove (its socket gone, say): by name
    for p in "$P_FIRST" "$P"; do
        podman ps -aq --filter "name=${p}_" | xargs -r podman rm -f >/dev/null 2>&1
        podman volume ls -q --filter "name=${p}_" | xargs -r podman volume rm -f >/dev/null 2>&1
        podman network ls -q --filter "name=${p}_" | xargs -r podman network rm -f >/dev/null 2>&1
    done
    if [ "${CB_COMPOSE_KEEP:-0}" != 1 ]; then
        podman rmi -f cbcore:dev cbcore-nats:dev cbcore-rabbitmq:dev >/dev/null 2>&1
        podman image prune -f >/dev/null 2>&1 # the build stages
        [ "$BASE_MADE" = 1 ] && podman rmi -f debian:12 >/dev/null 2>&1
    fi
    [ -n "$TICKER_PID" ] && kill "$TICKER_PID" 2>/dev/null
    [ -n "$SERVICE_PID" ] && kill "$SERVICE_PID" 2>/dev/null && wait "$SERVICE_PID" 2>/dev/null
    left=$(podman ps -a --filter "name=$P" -q | wc -l)
    [ "$left" -ne 0 ] && echo "compose-test: $left containers of $P left"
    if [ "$fails" -eq 0 ]; then rm -rf "$WORK"; else echo "files kept in $WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

podman system service --time=0 "$DOCKER_HOST" >"$WORK/podman-service.log" 2>&1 &
SERVICE_PID=$!
wait_for 30 test -S "$WORK/podman.sock" || { echo "FAIL podman's socket"; fails=1; exit 1; }
# podman runs its containers' health checks from systemd timers; a machine
# without systemd (these) never runs them, and compose's depends_on
# "service_healthy" would wait forever: run each running container's own
# check every 2 s instead (what Docker's engine does by itself)
(
    while kill -0 "$SERVICE_PID" 2>/dev/null; do
        for id in $(podman ps -q --filter "name=cbct" --filter status=running 2>/dev/null); do
            podman healthcheck run "$id" >/dev/null 2>&1 &
        done
        wait
        sleep 2
    done
) &
TICKER_PID=$!

# ---- 1. the base image
if podman image exists debian:12; then
    say "base image debian:12: the local one"
elif timeout 30 podman pull -q docker.io/library/debian:12 >/dev/null 2>&1; then
    say "base image debian:12: pulled"
else
    say "base image debian:12: no registry; debootstrap --variant=minbase bookworm"
    if ! debootstrap --variant=minbase bookworm "$WORK/rootfs" \
        "${DEBIAN_MIRROR:-http://deb.debian.org/debian}" >"$WORK/debootstrap.log" 2>&1; then
        echo "FAIL debootstrap"; tail -5 "$WORK/debootstrap.log"; fails=1; exit 1
    fi
    # the updates and security archives too, as the host's apt has them
    m=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
    printf 'deb %s bookworm main\ndeb %s bookworm-updates main\ndeb %s-security bookworm-security main\n' \
        "$m" "$m" "$m" >"$WORK/rootfs/etc/apt/sources.list"
    # what an image needs not (the package lists and archives, docs)
    rm -rf "$WORK"/rootfs/var/cache/apt/archives/*.deb "$WORK"/rootfs/var/lib/apt/lists/* \
        "$WORK"/rootfs/usr/share/doc/* "$WORK"/rootfs/usr/share/man/* "$WORK"/rootfs/usr/share/locale/*
    tar -C "$WORK/rootfs" -c . | podman import - debian:12 >/dev/null && BASE_MADE=1
    rm -rf "$WORK/rootfs"
    check "a debian:12 base image made locally" podman image exists debian:12
fi

# ---- 2. the images
export CB_NATS_PORT CB_API_PORT CB_AMQP_PORT
CB_NATS_PORT=$(free_port) CB_API_PORT=$(free_port) CB_AMQP_PORT=$(free_port)
say "building the images (docker-compose build)"
b0=$(date +%s)
compose --profile rabbitmq build >"$WORK/build.log" 2>&1
check "docker-compose build: the three images from the Dockerfile" test $? -eq 0
BUILD_S=$(($(date +%s) - b0))
for i in cbcore:dev cbcore-nats:dev cbcore-rabbitmq:dev; do
    echo "     image $i: $(podman image inspect "$i" --format '{{.Size}}' 2>/dev/null |
        awk '{printf "%.0f MB", $1 / 1e6}') (built in ${BUILD_S} s in all)"
done
check "the daemons' image runs as a user other than root" \
    test "$(podman image inspect cbcore:dev --format '{{.Config.User}}')" = cbcore
[ "$fails" -eq 0 ] || exit 1

# ---- 3. the stack
healthy() { # every container of the project that runs says healthy
    local ids n=0 h
    ids=$(compose ps -q 2>/dev/null)
    [ -n "$ids" ] || return 1
    for id in $ids; do
        h=$(podman inspect "$id" --format '{{.State.Health.Status}}' 2>/dev/null)
        [ "$h" = healthy ] || return 1
        n=$((n + 1))
    done
    [ "$n" -ge "$1" ]
}
unhealthy_report() {
    for id in $(compose ps -q 2>/dev/null); do
        echo "--- $(podman inspect "$id" --format '{{.Name}} {{.State.Status}} {{.State.Health.Status}}')"
        podman logs --tail 5 "$id" 2>&1
    done
}
up() { # SERVICES_EXPECTED: up -d, then every one healthy within 180 s
    compose up -d >>"$WORK/up.log" 2>&1 || { tail -20 "$WORK/up.log"; return 1; }
    wait_for 180 healthy "$1" || { unhealthy_report; return 1; }
}
say "starting the stack (NATS)"
u0=$(date +%s)
check "docker-compose up: nats, projector, engine, adapter, sla, api healthy" up 6
echo "     healthy in $(($(date +%s) - u0)) s"
[ "$fails" -eq 0 ] || exit 1
NATS="nats://127.0.0.1:$CB_NATS_PORT"
API="http://127.0.0.1:$CB_API_PORT"

# ---- 4. the demo job, three ways
result_of() { # TENANT/JOB: its result through the API
    curl -sf "$API/v1/jobs/$1/result"
}
is_42() { [ "$(result_of "$1" | tr -d ' \n')" = 42 ]; }
say "the demo job from the host through the published NATS port"
"$CB" submit --broker "$NATS" --wait --timeout 120 "$ROOT/examples/jobs/map_reduce.json" >"$WORK/demo.out" 2>&1
DEMO=$($PY -c 'import json,sys; print(json.loads(open(sys.argv[1]).read().splitlines()[-1])["job_id"])' "$WORK/demo.out" 2>/dev/null)
check "map_reduce from the host: succeeded" grep -q '"status":"succeeded"' "$WORK/demo.out"
check "... its result through the published API port is 42" is_42 "demo/$DEMO"
say "the demo job from a client container on the stack's network"
compose run --rm client cb submit --wait --timeout 120 examples/jobs/map_reduce.json >"$WORK/client.out" 2>&1
CLIENT_JOB=$($PY -c 'import json,sys; print(json.loads(open(sys.argv[1]).read().splitlines()[-1])["job_id"])' "$WORK/client.out" 2>/dev/null)
check "map_reduce from a client container: succeeded" grep -q '"status":"succeeded"' "$WORK/client.out"
check "... result 42" is_42 "demo/$CLIENT_JOB"
say "a 10,000-item map through the published API port"
curl -sf -X POST -H 'content-type: application/json' --data @"$ROOT/examples/jobs/map_10k.json" \
    "$API/v1/jobs" >"$WORK/big.reply" 2>&1
BIG=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["job_id"])' "$WORK/big.reply" 2>/dev/null)
check "POST /v1/jobs of map_10k accepted" test -n "$BIG"
big_ok() { # every output once, in order: add7 of 0..9999
    result_of "demo/$BIG" >"$WORK/big.json" &&
        $PY -c 'import json,sys; r=json.load(open(sys.argv[1])); assert r == [i + 7 for i in range(10000)], len(r)' "$WORK/big.json"
}
m0=$(date +%s)
check "... its result: 10,000 outputs, add7 of each item, in order" wait_for 300 big_ok
echo "     the 10,000-item map took $(($(date +%s) - m0)) s to its result"

# ---- 5. the engine container killed while a job runs
say "kill -9 of the engine's process while a job runs"
printf '{"tenant": "demo", "kind": "map", "function": {"backend": "local", "name": "sleep_ms"}, "input": {"items": %s}, "parallelism": 4}\n' \
    "$($PY -c 'print([100] * 400)')" >"$WORK/slow.json"
SLOW=$("$CB" submit --broker "$NATS" "$WORK/slow.json" 2>"$WORK/slow.err")
succeeded() { curl -sf "$API/v1/jobs/demo/$SLOW" | $PY -c 'import json,sys; print(json.load(sys.stdin)["counts"]["succeeded"])'; }
past() { [ "$(succeeded)" -ge "$1" ] 2>/dev/null; }
check "a job of 400 tasks of 100 ms, 4 at a time, submitted" test -n "$SLOW"
check "... 40 of its tasks succeeded" wait_for 60 past 40
ENGINE=$(compose ps -q engine)
RESTARTS0=$(podman inspect "$ENGINE" --format '{{.RestartCount}}')
EPID=$(podman inspect "$ENGINE" --format '{{.State.Pid}}')
kill -9 "$EPID"
AT_KILL=$(succeeded)
check "... killed while it ran ($AT_KILL of 400 done)" test "${AT_KILL:-400}" -lt 400
restarted() { [ "$(podman inspect "$ENGINE" --format '{{.RestartCount}}')" -gt "$RESTARTS0" ] &&
    [ "$(podman inspect "$ENGINE" --format '{{.State.Status}}')" = running ]; }
check "the restart policy brings the engine back" wait_for 60 restarted
slow_ok() {
    result_of "demo/$SLOW" >"$WORK/slow.out" &&
        $PY -c 'import json,sys; r=json.load(open(sys.argv[1])); assert len(r) == 400, len(r)' "$WORK/slow.out"
}
check "the job completes after the restart: 400 outputs, each once" wait_for 120 slow_ok
check "... the engine healthy again" wait_for 60 healthy 6

# ---- 6. down and up: the named volumes keep the log and the store
say "docker-compose down, then up"
compose down >"$WORK/down1.log" 2>&1
check "down: no container of the stack left" test "$(podman ps -a --filter "name=${P}_" -q | wc -l)" -eq 0
check "up again: every service healthy" up 6
check "the demo job's result is still there: 42" is_42 "demo/$DEMO"
check "... and the 10,000-item map's" big_ok

# ---- 7. the RabbitMQ profile (a project of its own: its own volumes)
say "the RabbitMQ profile"
compose down -v >"$WORK/down2.log" 2>&1
P="${P}r"
export COMPOSE_PROFILES=rabbitmq CB_BROKER_URL="amqp://guest:guest@rabbitmq:5672/"
check "up with the rabbitmq profile: rabbitmq, nats and the daemons healthy" up 7
"$CB" submit --broker "amqp://guest:guest@127.0.0.1:$CB_AMQP_PORT/" --wait --timeout 120 \
    "$ROOT/examples/jobs/map_reduce.json" >"$WORK/rdemo.out" 2>&1
RDEMO=$($PY -c 'import json,sys; print(json.loads(open(sys.argv[1]).read().splitlines()[-1])["job_id"])' "$WORK/rdemo.out" 2>/dev/null)
check "map_reduce on RabbitMQ from the host: succeeded" grep -q '"status":"succeeded"' "$WORK/rdemo.out"
check "... result 42" is_42 "demo/$RDEMO"

say "done: $fails failed; $(($(date +%s) - T0)) s in all"
[ "$fails" -eq 0 ]
