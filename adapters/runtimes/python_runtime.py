"""cbcore's Python runtime for the local backend.

    python3 -u python_runtime.py MODULE_FILE HANDLER

Imports MODULE_FILE and calls HANDLER(item) once per item. Warm (default when
stdin is not a single JSON document): serves the line protocol of
adapters/local.c, one request per line:
    -> {"id": N, "items": [...]}
    <- {"id": N, "outputs": [...]}  or  {"id": N, "error": "...", "traceback": "..."}
Cold (CB_COLD=1): reads one JSON input on stdin, prints its output as JSON.
A data scientist's function is plain Python: def add7(x): return x + 7

An item that is a range of an object (a map over objects: {"url": "s3://...",
"etag", "size", "range"}) reaches the function as a cbcore_objects.ObjectRange
that reads only its range: def count(obj): return len(obj.read().split())
References to outputs kept in storage ({"$cb_ref": ...}) in an item are
replaced by their values (cbcore_objects.resolve_refs).
"""
import importlib.util
import json
import os
import sys
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cbcore_objects  # noqa: E402  (beside this file)


def arg_of(item):
    """What the function receives for one item."""
    if cbcore_objects.is_object_item(item):
        return cbcore_objects.ObjectRange(item)
    return cbcore_objects.resolve_refs(item)


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


def error_line(exc):
    return "".join(traceback.format_exception_only(type(exc), exc)).strip()


def serve(fn):
    out = sys.stdout
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        rid = req.get("id")
        try:
            reply = {"id": rid, "outputs": [fn(arg_of(item)) for item in req["items"]]}
            text = json.dumps(reply, separators=(",", ":"), allow_nan=False)
        except Exception as exc:  # the function's failure is data
            text = json.dumps({"id": rid, "error": error_line(exc),
                               "traceback": traceback.format_exc()[-8000:]})
        out.write(text + "\n")
        out.flush()


def main():
    if len(sys.argv) != 3:
        raise SystemExit("usage: python_runtime.py MODULE_FILE HANDLER")
    fn = load(sys.argv[1], sys.argv[2])
    if os.environ.get("CB_COLD") == "1":
        value = fn(arg_of(json.load(sys.stdin)))
        sys.stdout.write(json.dumps(value, allow_nan=False) + "\n")
    else:
        serve(fn)


if __name__ == "__main__":
    main()
