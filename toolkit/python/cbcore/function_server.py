"""A cbcore function server: runs shipped Python functions for a remote
backend (docs/toolkit.md), the Knative / OpenFaaS way: an HTTP server that
an `http` account with "shipped": true points at.

    python3 -m cbcore.function_server --port 8080 [--objects DIR]

Each request is one item, as the http backend sends it (json or CloudEvents
binary mode, the same body):

    POST /   {"code": {"$cb_ref": "s3://.../code/<sha>.pkl", "size", "sha256"},
              "python": "3.11", "item": ITEM, "index": I}
    200      the output as JSON
    500      text: "Type: message" on the first line, the traceback after
             (the task's error and its remote traceback)
    GET /healthz   200 "ok" (a readiness probe)

The code and the objects a function reads come from the storage in
$CB_STORAGE (a "storage" object as JSON, as cb-adapter gives its runtimes)
or --objects DIR (the file driver). Functions run in the request's thread,
several at once; each is loaded once per process (cbcore.shipped).
"""
import argparse
import json
import os
import sys
import traceback
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from . import shipped

MAX_BODY = 64 << 20


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the http backend's client uses

    def log_message(self, fmt, *args):  # one line per failure only (below)
        pass

    def _send(self, status, body, ctype):
        data = body if isinstance(body, bytes) else body.encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        if self.headers.get("ce-id"):  # a CloudEvents reply, binary mode
            self.send_header("ce-specversion", "1.0")
            self.send_header("ce-id", self.headers["ce-id"] + "/reply")
            self.send_header("ce-source", "/cbcore/function-server")
            self.send_header("ce-type", "dev.cbcore.result")
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path.rstrip("/") in ("/healthz", "/health"):
            self._send(200, "ok\n", "text/plain")
        else:
            self._send(404, "not found\n", "text/plain")

    def do_POST(self):
        try:
            n = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            n = -1
        if n < 0 or n > MAX_BODY:
            self._send(413, "the body must have a Content-Length up to %d bytes\n" % MAX_BODY,
                       "text/plain")
            return
        try:
            req = json.loads(self.rfile.read(n))
            if not isinstance(req, dict) or "code" not in req or "item" not in req:
                raise ValueError("the body is not a shipped function's request "
                                 "({\"code\", \"python\", \"item\", \"index\"})")
        except ValueError as exc:
            self._send(400, "bad request: %s\n" % exc, "text/plain")
            return
        try:
            fn = shipped.load(req["code"], req.get("python"))
            out = shipped.run(fn, [req["item"]], req.get("index"))[0]
            text = json.dumps(out, separators=(",", ":"), allow_nan=False)
        except Exception as exc:  # the function's failure is the answer
            body = shipped.error_line(exc) + "\n" + traceback.format_exc()[-8000:]
            sys.stderr.write("function failed: %s\n" % shipped.error_line(exc))
            self._send(500, body, "text/plain; charset=utf-8")
            return
        self._send(200, text, "application/json")


def main(argv=None):
    ap = argparse.ArgumentParser(description="Run shipped cbcore functions over HTTP.")
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8080, help="0: any free port")
    ap.add_argument("--port-file", help="write the port there once listening")
    ap.add_argument("--objects", help="the file driver's directory (else $CB_STORAGE)")
    a = ap.parse_args(argv)
    if a.objects:
        os.environ["CB_STORAGE"] = json.dumps({"driver": "file",
                                               "root": os.path.abspath(a.objects)})
    if not os.environ.get("CB_STORAGE"):
        ap.error("no storage to read the code from: give --objects DIR or $CB_STORAGE")
    srv = ThreadingHTTPServer((a.host, a.port), Handler)
    srv.daemon_threads = True
    port = srv.server_address[1]
    if a.port_file:
        tmp = a.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % port)
        os.replace(tmp, a.port_file)
    sys.stderr.write("cbcore function server on http://%s:%d/\n" % (a.host, port))
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        srv.server_close()


if __name__ == "__main__":
    main()
