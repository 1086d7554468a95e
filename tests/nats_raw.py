"""tests/nats_raw.py - a NATS client in a few lines of the protocol, for the
security tests: it does exactly what it is told (no library in between) and
reports what the server answers, so a test sees the server's own
"Permissions Violation" for what an identity may not do.

Session(port, user, password).try_(op) sends one protocol operation and a
PING, and returns the -ERR lines the server sent before its PONG ([] when it
took the operation)."""
import json
import socket


class Refused(Exception):
    pass


class Session:
    def __init__(self, port, user=None, password=None, timeout=5.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.f = self.sock.makefile("rb")
        info = self.f.readline()
        if not info.startswith(b"INFO "):
            raise Refused("no INFO: %r" % info)
        connect = {"verbose": False, "pedantic": False, "headers": True,
                   "no_responders": True, "protocol": 1, "lang": "test", "version": "0"}
        if user is not None:
            connect.update(user=user, **{"pass": password})
        self.sock.sendall(b"CONNECT " + json.dumps(connect).encode() + b"\r\nPING\r\n")
        errs = self._until_pong()
        if errs:
            raise Refused(errs[0])
        self.msgs = []
        self.sid = 0

    def _until_pong(self):
        errs = []
        while True:
            line = self.f.readline()
            if not line:
                errs.append("(connection closed)")
                return errs
            line = line.rstrip(b"\r\n")
            if line == b"PONG":
                return errs
            if line == b"PING":
                self.sock.sendall(b"PONG\r\n")
            elif line.startswith(b"-ERR"):
                errs.append(line.decode())
            elif line.startswith(b"MSG ") or line.startswith(b"HMSG "):
                parts = line.split()
                size = int(parts[-1])
                body = self.f.read(size + 2)[:-2]
                self.msgs.append((parts[1].decode(), body))

    def try_(self, op):
        self.sock.sendall((op + b"\r\n" if op else b"") + b"PING\r\n")
        return self._until_pong()

    def pub(self, subject, data=b"{}", reply=None, headers=None):
        if headers:
            hdr = b"NATS/1.0\r\n" + b"".join(b"%s: %s\r\n" % (k.encode(), v.encode())
                                             for k, v in headers.items()) + b"\r\n"
            head = b"HPUB %s %s%d %d\r\n" % (subject.encode(), (reply + " ").encode() if reply else b"",
                                             len(hdr), len(hdr) + len(data))
            return self.try_(head + hdr + data)
        head = b"PUB %s %s%d\r\n" % (subject.encode(), (reply + " ").encode() if reply else b"", len(data))
        return self.try_(head + data)

    def sub(self, subject):
        self.sid += 1
        return self.try_(b"SUB %s %d" % (subject.encode(), self.sid))

    def expect(self, subject, timeout=10.0):
        """The body of the first message on `subject` (already delivered or
        coming within `timeout` seconds), or None."""
        import time
        end = time.monotonic() + timeout
        while True:
            for s, b in self.msgs:
                if s == subject:
                    return b
            if time.monotonic() > end:
                return None
            self.try_(b"")  # a round trip: what the server sent before its PONG

    def flush(self):
        """Round trips until nothing more comes (what was delivered is in msgs)."""
        return self.try_(b"")

    def close(self):
        self.sock.close()
