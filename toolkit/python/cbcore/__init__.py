"""cbcore's Python toolkit: run your Python functions on cbcore, as Lithops
users do (toolkit/python/README.md).

    import cbcore
    with cbcore.FunctionExecutor() as fexec:
        fexec.map(lambda x: x + 7, [1, 2, 3, 4])
        print(fexec.get_result())              # [8, 9, 10, 11]

`import cbcore as lithops` runs most Lithops scripts unchanged.
"""
from .api import ApiError
from .config import ConfigError
from .futures import (ALL_COMPLETED, ALWAYS, ANY_COMPLETED, JobFailed, RemoteError,
                      ResponseFuture)
from .storage import CloudObject, Storage

__version__ = "0.1.0"

__all__ = ["FunctionExecutor", "ServerlessExecutor", "LocalhostExecutor", "Storage",
           "CloudObject", "ResponseFuture", "RemoteError", "JobFailed", "ApiError",
           "ConfigError", "ALL_COMPLETED", "ANY_COMPLETED", "ALWAYS", "wait", "get_result"]


def __getattr__(name):
    # the executor needs nothing the runtime lacks, but only clients use it
    if name in ("FunctionExecutor", "ServerlessExecutor", "LocalhostExecutor"):
        from .executor import FunctionExecutor
        return FunctionExecutor
    raise AttributeError("module 'cbcore' has no attribute %r" % name)


def wait(fs, throw_except=True, return_when=ALL_COMPLETED, timeout=None, **kw):
    """(done, not_done) of futures, whatever executors made them."""
    done, not_done = [], []
    for ex, group in _by_executor(fs):
        d, n = ex.wait(group, throw_except=throw_except, return_when=return_when,
                       timeout=timeout, **kw)
        done += d
        not_done += n
    return done, not_done


def get_result(fs, throw_except=True, timeout=None, **kw):
    """The values of futures, whatever executors made them, in their order."""
    if isinstance(fs, ResponseFuture):
        return fs.result(timeout=timeout, throw_except=throw_except)
    wait(fs, throw_except=throw_except, timeout=timeout, **kw)
    return [f.result(throw_except=throw_except) for f in fs]


def _by_executor(fs):
    if isinstance(fs, ResponseFuture):
        fs = [fs]
    groups = {}
    for f in fs:
        ex = f._job.executor
        groups.setdefault(id(ex), (ex, []))[1].append(f)
    return list(groups.values())
