# tests/nginx.sh - sourced by the tests that read objects from a plain web
# server: Debian's nginx (nginx-light, installed by tools/deps.sh) serving a
# directory on a free loopback port, with its own configuration, pid file
# and logs under a temporary directory (no system service is touched).
#   nginx_start WORK_DIR ROOT   sets NGINX_PORT and NGINX_PID
#   nginx_stop
# nginx answers Range requests with 206 and gives every file an ETag.
. "$(dirname "${BASH_SOURCE[0]}")/../tools/brokers.sh" # cb_free_port, cb_wait_for, cb_port_open
NGINX_PID=
NGINX_PORT=

nginx_start() {
    local work=$1 root=$2
    if ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ]; then
        echo "nginx is missing: apt-get install nginx-light (tools/deps.sh)" >&2
        return 1
    fi
    NGINX_PORT=$(cb_free_port)
    mkdir -p "$work/tmp"
    # root runs the workers too: the test's directories are private (0700)
    cat >"$work/nginx.conf" <<CONF
$( [ "$(id -u)" = 0 ] && echo "user root root;" )
worker_processes 1;
daemon off;
pid $work/nginx.pid;
error_log $work/error.log;
events { worker_connections 256; }
http {
    access_log off;
    default_type application/octet-stream;
    client_body_temp_path $work/tmp;
    proxy_temp_path $work/tmp;
    fastcgi_temp_path $work/tmp;
    uwsgi_temp_path $work/tmp;
    scgi_temp_path $work/tmp;
    server { listen 127.0.0.1:$NGINX_PORT; root $root; }
}
CONF
    PATH="$PATH:/usr/sbin" nginx -c "$work/nginx.conf" -e "$work/error.log" >"$work/out.log" 2>&1 &
    NGINX_PID=$!
    if ! cb_wait_for 30 cb_port_open "$NGINX_PORT"; then
        echo "nginx did not open port $NGINX_PORT:" >&2
        cat "$work/out.log" "$work/error.log" >&2
        return 1
    fi
}

nginx_stop() {
    cb_stop_child "$NGINX_PID"
    NGINX_PID=
}
