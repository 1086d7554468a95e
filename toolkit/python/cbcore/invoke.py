"""How a shipped function is called in cbcore's Python runtime.

The toolkit does not ship the caller's function alone: it ships an
Invocation, a callable that holds the function and the call's conventions
(Lithops' argument forms, extra_args, the `storage` and `id` parameters),
cloudpickled together. The runtime (adapters/runtimes/python_runtime.py
--shipped) calls `invocation.cb_call(arg, index)` per item, where `arg` is
the item as the runtime made it (an ObjectRange for a range of an object,
references resolved) and `index` the item's index in the job's input.

This module is imported in the runtime by reference (it is on the runtime's
path), so only the user's function travels by value.

Item forms:
    "calls"   the item is a call the toolkit encoded: [args, kwargs], or
              {"$cb_pickle": ...} of (args, kwargs) when JSON cannot carry it
    "value"   the item is the function's one argument (a range's integers;
              an object range, passed as `obj` when the function has such a
              parameter, as Lithops does)
    "reduce"  the item is the list of the map's outputs (a map_reduce's
              reduce): passed as the one argument, pickled outputs decoded
    "output"  the item is another call's output (a pipeline's step): the
              one argument, decoded
"""
import base64
import inspect
import json

PICKLE_KEY = "$cb_pickle"


def encode(value):
    """value as JSON carries it, else {"$cb_pickle": base64 of its cloudpickle}."""
    try:
        json.dumps(value, allow_nan=False)
        return value
    except (TypeError, ValueError):
        import cloudpickle
        return {PICKLE_KEY: base64.b64encode(cloudpickle.dumps(value)).decode("ascii")}


def is_pickled(value):
    return isinstance(value, dict) and len(value) == 1 and isinstance(value.get(PICKLE_KEY), str)


def decode(value):
    """The value encode() made (and any {"$cb_pickle"} inside lists and dicts)."""
    if is_pickled(value):
        import pickle
        return pickle.loads(base64.b64decode(value[PICKLE_KEY]))
    if isinstance(value, list):
        return [decode(v) for v in value]
    if isinstance(value, dict):
        return {k: decode(v) for k, v in value.items()}
    return value


def encode_call(args, kwargs):
    """One map item of the "calls" form."""
    try:
        json.dumps([args, kwargs], allow_nan=False)
        return [list(args), kwargs]
    except (TypeError, ValueError):
        return encode((tuple(args), kwargs))


def decode_call(item):
    """(args, kwargs) of an encode_call() item."""
    if is_pickled(item):
        args, kwargs = decode(item)
        return list(args), dict(kwargs)
    if not (isinstance(item, list) and len(item) == 2 and isinstance(item[0], list)
            and isinstance(item[1], dict)):
        raise TypeError("the item is not a call the toolkit encoded: %.200r" % (item,))
    return item[0], item[1]


def parameters(fn):
    """The names of fn's parameters ("" when they cannot be read)."""
    try:
        return tuple(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        return ()


class Invocation:
    """A function with the conventions of its calls; what the toolkit ships."""

    def __init__(self, fn, form="calls", extra_args=None, extra_kwargs=None, tenant=None):
        if form not in ("calls", "value", "reduce", "output"):
            raise ValueError("form must be calls, value, reduce or output")
        self.fn = fn
        self.form = form
        self.extra_args = list(extra_args or ())
        self.extra_kwargs = dict(extra_kwargs or {})
        self.tenant = tenant  # the jobs the function runs itself belong to it
        names = parameters(fn)
        self.wants_storage = "storage" in names
        self.wants_id = "id" in names
        self.wants_obj = "obj" in names
        self.wants_url = "url" in names

    def __call__(self, arg):
        return self.cb_call(arg, None)

    def cb_call(self, arg, index):
        """Call the function for one item; its value, encoded for JSON."""
        from .config import current_tenant
        token = current_tenant.set(self.tenant)
        try:
            return self._call(arg, index)
        finally:
            current_tenant.reset(token)

    def _call(self, arg, index):
        args, kwargs = [], dict(self.extra_kwargs)
        if self.form == "calls":
            args, kw = decode_call(arg)
            kwargs.update(kw)
        elif self.form in ("reduce", "output"):
            args = [decode(arg)]
        elif _is_range(arg) and (self.wants_obj or self.wants_url):
            kwargs["obj" if self.wants_obj else "url"] = arg
        else:
            args = [arg]
        args.extend(self.extra_args)
        if self.wants_storage and "storage" not in kwargs:
            from .storage import Storage
            kwargs["storage"] = Storage()
        if self.wants_id and "id" not in kwargs:
            kwargs["id"] = index
        return encode(self.fn(*args, **kwargs))


def _is_range(arg):
    from .objects import ObjectRange
    return isinstance(arg, ObjectRange)
