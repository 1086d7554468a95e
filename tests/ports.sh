# tests/ports.sh - sourced by the test helpers that start a peer server on
# loopback (tests/s3rver.sh, tests/nginx.sh).
#   free_port            prints a free loopback TCP port
#   wait_port PORT SECS  returns 0 once 127.0.0.1:PORT accepts connections,
#                        1 after SECS seconds

free_port() {
    /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_port() {
    /usr/bin/python3 - "$1" "$2" <<'PY'
import socket, sys, time
end = time.monotonic() + float(sys.argv[2])
while time.monotonic() < end:
    try:
        socket.create_connection(("127.0.0.1", int(sys.argv[1])), 0.2).close()
        sys.exit(0)
    except OSError:
        time.sleep(0.05)
sys.exit(1)
PY
}
