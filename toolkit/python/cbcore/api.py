"""A client of cb-api (docs/api.md): JSON requests over keep-alive
connections (one per thread) and server-sent event streams.

Standard library only (http.client). Thread-safe: every thread has its own
connection; a stream has a connection of its own.
"""
import http.client
import os
import json
import socket
import ssl
import threading
import urllib.parse
from typing import Any, Dict, Iterator, Optional, Tuple


class ApiError(RuntimeError):
    """cb-api answered with an error: .status, .code, .message, .errors."""

    def __init__(self, status: int, code: str, message: str, errors: Any = None):
        detail = message
        if errors:
            detail += ": " + "; ".join("%s %s" % (e.get("path", ""), e.get("message", ""))
                                       for e in errors[:5] if isinstance(e, dict))
        super().__init__("cb-api %d %s: %s" % (status, code, detail))
        self.status, self.code, self.message, self.errors = status, code, message, errors


class Api:
    """One cb-api: `url` (http:// or https://), an optional bearer token."""

    def __init__(self, url: str, token: Optional[str] = None, timeout: float = 60.0):
        u = urllib.parse.urlsplit(url)
        if u.scheme not in ("http", "https") or not u.hostname:
            raise ValueError("the API URL must be http(s)://HOST[:PORT]: %r" % url)
        self.url = url
        self.scheme, self.host, self.port = u.scheme, u.hostname, u.port
        self.base = u.path.rstrip("/")
        self.token = token
        self.timeout = timeout
        self._local = threading.local()

    def _connect(self, timeout: Optional[float]) -> http.client.HTTPConnection:
        if self.scheme == "https":
            # a `cb up --tls` stack's CA ($CB_API_CA_FILE), else the system's
            return http.client.HTTPSConnection(
                self.host, self.port, timeout=timeout,
                context=ssl.create_default_context(cafile=os.environ.get("CB_API_CA_FILE") or None))
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def _headers(self, extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
        h = {"Accept": "application/json"}
        if self.token:
            h["Authorization"] = "Bearer " + self.token
        h.update(extra or {})
        return h

    def request(self, method: str, path: str, body: Any = None,
                query: Optional[Dict[str, Any]] = None) -> Tuple[int, Any]:
        """(status, parsed JSON body) of one request; a broken keep-alive
        connection is opened again once."""
        target = self.base + path
        if query:
            target += "?" + urllib.parse.urlencode(
                {k: v for k, v in query.items() if v is not None})
        data = None
        headers = self._headers()
        if body is not None:
            data = json.dumps(body, separators=(",", ":")).encode()
            headers["Content-Type"] = "application/json"
        for attempt in (0, 1):
            conn = getattr(self._local, "conn", None)
            if conn is None:
                conn = self._local.conn = self._connect(self.timeout)
            try:
                conn.request(method, target, body=data, headers=headers)
                resp = conn.getresponse()
                text = resp.read()
            except (http.client.HTTPException, ConnectionError, socket.timeout, OSError):
                conn.close()
                self._local.conn = None
                if attempt:
                    raise
                continue
            if resp.getheader("Connection", "").lower() == "close":
                conn.close()
                self._local.conn = None
            try:
                value = json.loads(text) if text else None
            except ValueError:
                value = text.decode("utf-8", "replace")
            return resp.status, value
        raise AssertionError("unreachable")

    def call(self, method: str, path: str, body: Any = None,
             query: Optional[Dict[str, Any]] = None, ok=(200, 201, 202)) -> Any:
        """The body of a successful answer; ApiError otherwise."""
        status, value = self.request(method, path, body, query)
        if status in ok:
            return value
        err = value.get("error", {}) if isinstance(value, dict) else {}
        if not isinstance(err, dict):
            err = {"message": str(err)}
        raise ApiError(status, err.get("code", "http_%d" % status),
                       err.get("message", str(value)[:300]),
                       value.get("errors") if isinstance(value, dict) else None)

    # ---- the routes the toolkit uses -------------------------------------------

    def submit(self, job: Dict[str, Any]) -> Dict[str, Any]:
        return self.call("POST", "/v1/jobs", job)

    def job(self, tenant: str, job: str) -> Dict[str, Any]:
        return self.call("GET", "/v1/jobs/%s/%s" % (tenant, job))

    def result(self, tenant: str, job: str) -> Any:
        return self.call("GET", "/v1/jobs/%s/%s/result" % (tenant, job))

    def tasks(self, tenant: str, job: str, state: Optional[str] = None,
              after: Optional[int] = None, limit: int = 1000) -> Dict[str, Any]:
        return self.call("GET", "/v1/jobs/%s/%s/tasks" % (tenant, job),
                         query={"state": state, "after": after, "limit": limit})

    def events(self, tenant: str, job: str, after: Optional[int] = None,
               limit: int = 1000) -> Dict[str, Any]:
        return self.call("GET", "/v1/jobs/%s/%s/events" % (tenant, job),
                         query={"after": after, "limit": limit})

    def control(self, tenant: str, job: str, op: str) -> Any:
        return self.call("POST", "/v1/jobs/%s/%s/%s" % (tenant, job, op))

    def retry(self, tenant: str, job: str, new_job: Optional[str] = None) -> Dict[str, Any]:
        """Run a failed or cancelled job again as a new job (named new_job,
        else by the engine): its tasks that succeeded are not run again."""
        return self.call("POST", "/v1/jobs/%s/%s/retry" % (tenant, job),
                         {"job_id": new_job} if new_job else None)

    def stream(self, path: str, opened: Optional[threading.Event] = None,
               sock_box: Optional[list] = None) -> Iterator[Tuple[str, str]]:
        """The (event, data) pairs of a server-sent event stream, until it
        ends. `opened` is set once the server answered 200 (its
        subscriptions are in place); `sock_box` receives the connection,
        so that another thread can close it."""
        conn = self._connect(None)
        if sock_box is not None:
            sock_box.append(conn)
        try:
            conn.request("GET", self.base + path,
                         headers=self._headers({"Accept": "text/event-stream"}))
            resp = conn.getresponse()
            if resp.status != 200:
                text = resp.read()
                try:
                    err = json.loads(text).get("error", {})
                except ValueError:
                    err = {}
                raise ApiError(resp.status, err.get("code", "http_%d" % resp.status),
                               err.get("message", text[:300].decode("utf-8", "replace")))
            if opened is not None:
                opened.set()
            event, data = "message", []
            while True:
                line = resp.readline()
                if not line:
                    return
                line = line.decode("utf-8").rstrip("\r\n")
                if not line:
                    if data:
                        yield event, "\n".join(data)
                    event, data = "message", []
                elif line.startswith(":"):
                    continue
                elif line.startswith("event:"):
                    event = line[6:].strip()
                elif line.startswith("data:"):
                    value = line[5:]
                    data.append(value[1:] if value.startswith(" ") else value)
        finally:
            conn.close()
