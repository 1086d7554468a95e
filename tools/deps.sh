#!/bin/sh
# tools/deps.sh - install the Debian 12 packages cbcore needs, idempotently.
#   tools/deps.sh                     install what is missing (apt-get)
#   tools/deps.sh --check-or-install  the same, silent when all are present
#   tools/deps.sh --list              print the package list
#   tools/deps.sh --build             only what building the binaries needs
#                                     (the Dockerfile's build stage)
#   tools/deps.sh --compose           what tools/compose-test.sh needs (podman,
#                                     runc, docker-compose, debootstrap)
set -eu

PKGS="build-essential pkg-config librabbitmq-dev libnats-dev libjansson-dev liblmdb-dev \
lmdb-utils libevent-dev libssl-dev libcmocka-dev nats-server rabbitmq-server amqp-tools \
python3 python3-jsonschema python3-pika python3-yaml python3-boto3 python3-cloudpickle python3-pytest python3-tqdm python3-venv python3-pip python3-pyflakes curl bsdutils util-linux clang-format cppcheck openssl \
nginx-light prometheus chromium"
# util-linux: prlimit(1), which sets a local function's memory limit (docs/engine.md, "Function memory");
# prometheus: promtool checks cb-api's /metrics and a private server scrapes it in tests/it_api.sh;
# python3-cloudpickle: shipped functions (docs/toolkit.md); python3-pytest, python3-tqdm, python3-venv, python3-pip: the Python toolkit (tests/it_toolkit.sh installs it with pip); python3-pyflakes: make lint.
# chromium: the dashboard test (tests/it_ui.sh) drives it headless through puppeteer-core (tests/peers).
# Node.js runs the Node example client and the remote backends' test peers; a machine with its own node/npm
# (e.g. from nodejs.org) keeps it: these two are checked by command.
CMD_PKGS="node:nodejs npm:npm"
# what `make` of the binaries needs (tools/embed.py: python3), no more
BUILD_PKGS="build-essential pkg-config librabbitmq-dev libnats-dev libjansson-dev liblmdb-dev \
libevent-dev libssl-dev python3"
if [ "${1:-}" = "--build" ]; then
    PKGS=$BUILD_PKGS
    CMD_PKGS=""
elif [ "${1:-}" = "--compose" ]; then
    PKGS="podman runc docker-compose debootstrap curl python3"
    CMD_PKGS=""
fi

if [ "${1:-}" = "--list" ]; then
    echo $PKGS nodejs npm
    exit 0
fi

missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        missing="$missing $p"
    fi
done
for cp in $CMD_PKGS; do
    command -v "${cp%%:*}" >/dev/null 2>&1 || missing="$missing ${cp#*:}"
done
[ -z "$missing" ] && exit 0

echo "cbcore: installing missing Debian packages:$missing" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
        echo "cbcore: need root (or sudo) to install:$missing" >&2
        exit 1
    fi
fi
export DEBIAN_FRONTEND=noninteractive
# The servers among these (nginx, nats-server, rabbitmq-server, prometheus) are for cbcore
# to run privately on loopback ports; Debian's policy-rc.d (exit 101) keeps
# their packages from starting system services while they install (nginx
# would take port 80), unless the machine has a policy of its own.
POLICY=/usr/sbin/policy-rc.d
if [ ! -e "$POLICY" ] && printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$POLICY" >/dev/null; then
    $SUDO chmod 755 "$POLICY"
    trap '$SUDO rm -f "$POLICY"' EXIT
fi
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
# The package starts a system rabbitmq-server; cbcore runs private nodes instead.
if [ -x /usr/sbin/rabbitmqctl ] && echo "$missing" | grep -q rabbitmq-server; then
    $SUDO /usr/sbin/rabbitmqctl stop >/dev/null 2>&1 || true
fi
