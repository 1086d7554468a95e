"""Running shipped functions (docs/toolkit.md): shared by cbcore's Python
runtime for the local backend (adapters/runtimes/python_runtime.py) and by
the function server for remote backends (cbcore.function_server).

A request names its function by a reference to its cloudpickle in storage,
{"$cb_ref": "s3://.../code/<sha256>.pkl", "size", "sha256"}, and the Python
major.minor it was shipped from. load() reads it (size and sha256
checked), unpickles it and keeps it by digest (the 32 most recent); run()
calls it per item.
"""
import collections
import os
import sys
import traceback

from . import invoke, objects

MAX_CODE_BYTES = int(os.environ.get("CB_MAX_CODE_BYTES", str(64 << 20)))
KEEP_FUNCTIONS = 32
_loaded = collections.OrderedDict()  # sha256 -> function


class ShippedError(Exception):
    """A shipped function that cannot run here (its bytes, its Python)."""


def error_line(exc):
    """"Type: message" of an exception, as the task's error."""
    return "".join(traceback.format_exception_only(type(exc), exc)).strip()


def load(code, python):
    """The function a request's code reference names."""
    here = "%d.%d" % sys.version_info[:2]
    if python and python != here:
        raise ShippedError("the function was shipped from Python %s and this runtime is %s: "
                           "cloudpickle needs the same version on both sides" % (python, here))
    if not objects.is_ref(code) or not code.get("sha256"):
        raise ShippedError("the request's code is not a reference with a sha256")
    digest = code["sha256"]
    fn = _loaded.get(digest)
    if fn is not None:
        _loaded.move_to_end(digest)
        return fn
    if int(code.get("size", 0)) > MAX_CODE_BYTES:
        raise ShippedError("the shipped function is %d bytes, over the limit of %d "
                           "(CB_MAX_CODE_BYTES)" % (int(code["size"]), MAX_CODE_BYTES))
    data = objects.fetch_bytes(code)
    try:
        import cloudpickle
        fn = cloudpickle.loads(data)
    except Exception as exc:  # noqa: BLE001 (what unpickling raises is open)
        raise ShippedError("the shipped function does not unpickle here: " + error_line(exc))
    if not callable(fn):
        raise ShippedError("the shipped object is a %s, not a function" % type(fn).__name__)
    _loaded[digest] = fn
    while len(_loaded) > KEEP_FUNCTIONS:
        _loaded.popitem(last=False)
    return fn


def arg_of(item):
    """What a function receives for one item: an ObjectRange for a range of
    an object, else the item with references to stored outputs resolved."""
    if objects.is_object_item(item):
        return objects.ObjectRange(item)
    return objects.resolve_refs(item)


def run(fn, items, first=None):
    """The outputs of a shipped function over items (first: the job's index
    of items[0]). The toolkit's Invocation is called as cb_call(arg, index)."""
    call = getattr(fn, "cb_call", None)
    if call is not None:
        return [call(arg_of(item), None if first is None else first + k)
                for k, item in enumerate(items)]
    return [invoke.encode(fn(arg_of(item))) for item in items]
