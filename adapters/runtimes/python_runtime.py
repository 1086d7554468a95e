"""cbcore's Python runtime for the local backend.

    python3 -u python_runtime.py MODULE_FILE HANDLER
    python3 -u python_runtime.py --shipped

Imports MODULE_FILE and calls HANDLER(item) once per item. Warm (default when
stdin is not a single JSON document): serves the line protocol of
adapters/local.c, one request per line:
    -> {"id": N, "items": [...]}
    <- {"id": N, "outputs": [...]}  or  {"id": N, "error": "...", "traceback": "..."}
Cold (CB_COLD=1): reads one JSON input on stdin, prints its output as JSON.
A data scientist's function is plain Python: def add7(x): return x + 7

An item that is a range of an object (a map over objects: {"url": "s3://...",
"etag", "size", "range"}) reaches the function as a cbcore.objects.ObjectRange
that reads only its range: def count(obj): return len(obj.read().split())
References to outputs kept in storage ({"$cb_ref": ...}) in an item are
replaced by their values (cbcore.objects.resolve_refs).

Shipped functions (--shipped; docs/toolkit.md): no module; each request line
also carries the function as a reference to its cloudpickle in storage,
    -> {"id": N, "items": [...], "code": {"$cb_ref", "size", "sha256"},
        "python": "3.11"}
which is read (size and sha256 checked), unpickled and kept by digest (the
32 most recent). A result JSON cannot carry comes back as
{"$cb_pickle": "<base64 of its cloudpickle>"}. The toolkit ships a
cbcore.invoke.Invocation (the function with its calls' conventions): it is
called as invocation.cb_call(arg, index), index being the item's index in
the job's input ("first" of the request line, plus its position). The
cbcore package is beside this file (a link to toolkit/python/cbcore), so
the runtime imports it by reference.
"""
import importlib.util
import json
import os
import sys
import traceback

# beside this file: cbcore (a link to the toolkit's package) and
# cbcore_objects, which functions may import
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cbcore import shipped  # noqa: E402  (loads shipped functions; shared with its server)
from cbcore.shipped import arg_of, error_line  # noqa: E402


def load(path, name):
    spec = importlib.util.spec_from_file_location("cb_user_module", path)
    if spec is None:
        raise SystemExit(f"cannot load module {path}")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, os.path.dirname(os.path.abspath(path)))
    spec.loader.exec_module(module)
    fn = getattr(module, name, None)
    if not callable(fn):
        raise SystemExit(f"{path} has no function named {name}")
    return fn


def serve(fn):
    """The line protocol; fn None: shipped functions (each request names its own)."""
    out = sys.stdout
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        rid = req.get("id")
        try:
            if fn is None:
                f = shipped.load(req.get("code"), req.get("python"))
                outputs = shipped.run(f, req["items"], req.get("first"))
            else:
                outputs = [fn(arg_of(item)) for item in req["items"]]
            reply = {"id": rid, "outputs": outputs}
            text = json.dumps(reply, separators=(",", ":"), allow_nan=False)
        except Exception as exc:  # the function's failure is data
            text = json.dumps({"id": rid, "error": error_line(exc),
                               "traceback": traceback.format_exc()[-8000:]})
        out.write(text + "\n")
        out.flush()


def main():
    if sys.argv[1:] == ["--shipped"]:
        serve(None)
        return
    if len(sys.argv) != 3:
        raise SystemExit("usage: python_runtime.py MODULE_FILE HANDLER | --shipped")
    fn = load(sys.argv[1], sys.argv[2])
    if os.environ.get("CB_COLD") == "1":
        value = fn(arg_of(json.load(sys.stdin)))
        sys.stdout.write(json.dumps(value, allow_nan=False) + "\n")
    else:
        serve(fn)


if __name__ == "__main__":
    main()
