"""Futures of the toolkit's calls, and how a remote failure becomes a local
exception.

A future is one call: an item of a map (its index in the job's input), a
call_async, or a map_reduce's reduce. Futures of one job share its _Job,
which the executor resolves when cb-api's stream brings the job's done
message; nothing polls.
"""
import builtins
import concurrent.futures
import re
import sys
import threading
from typing import Any, Dict, List, Optional


_HTTP_STATUS = re.compile(r"HTTP [0-9]{3}: ")

ALL_COMPLETED = 1
ANY_COMPLETED = 2
ALWAYS = 3


class RemoteError(Exception):
    """A function's exception whose type is not known here: .type_name,
    .message, .remote_traceback."""

    def __init__(self, type_name: str, message: str):
        super().__init__("%s: %s" % (type_name, message) if message else type_name)
        self.type_name, self.message = type_name, message


class RemoteTraceback(Exception):
    """Carries the remote traceback as the cause of a re-raised exception."""

    def __init__(self, tb: str):
        super().__init__(tb)
        self.tb = tb

    def __str__(self) -> str:
        return "\n\nRemote traceback (cbcore):\n" + self.tb


class JobFailed(RuntimeError):
    """The job of a call failed as a whole (a timeout, a lost DAG step, a
    failed reduce input): .job_id, .error."""

    def __init__(self, job_id: str, error: str):
        super().__init__("job %s failed: %s" % (job_id, error))
        self.job_id, self.error = job_id, error


def _exception_type(name: str):
    """The local class of a remote exception type name, or None."""
    module, _, cls = name.rpartition(".")
    candidates = []
    if module:
        candidates.append(sys.modules.get(module))
    else:
        candidates += [builtins, sys.modules.get("__main__")]
    for m in candidates:
        t = getattr(m, cls, None) if m is not None else None
        if isinstance(t, type) and issubclass(t, BaseException):
            return t
    return None


def remote_exception(error: str, tb: Optional[str], reason: Optional[str] = None
                     ) -> BaseException:
    """The exception a task's error stands for. The function's own ("Type:
    message", as the runtime writes it, reason "exit"): the same type when
    it is known here (builtins, the caller's __main__, modules already
    imported), else RemoteError. The engine's or adapter's (reason
    "timeout": TimeoutError; others: RemoteError named by the reason). The
    remote traceback attached as its cause and as .remote_traceback."""
    if reason == "exit" and _HTTP_STATUS.match(error):  # a function server's 500
        error = error.split(": ", 1)[1]
    name, sep, message = error.partition(": ")
    if not sep or " " in name.strip() or (reason and reason != "exit"):
        name, message = "", error
    exc: Optional[BaseException] = None
    t = _exception_type(name) if name else (TimeoutError if reason == "timeout" else None)
    if t is not None:
        try:
            exc = t(message)
        except Exception:  # noqa: BLE001  (a constructor with other arguments)
            exc = None
    if exc is None:
        exc = RemoteError(name or reason or "Error", message)
    exc.remote_traceback = tb  # type: ignore[attr-defined]
    if tb:
        exc.__cause__ = RemoteTraceback(tb)
    return exc


class _Flag:
    """A status that reads as a bool (`if f.done:`) and as a call (`f.done()`)."""

    __slots__ = ("value",)

    def __init__(self, value: bool):
        self.value = bool(value)

    def __bool__(self) -> bool:
        return self.value

    def __call__(self) -> bool:
        return self.value

    def __repr__(self) -> str:
        return repr(self.value)


class _Job:
    """One submitted job and what its futures need of it."""

    def __init__(self, executor, tenant: str, job_id: str, kind: str, n: int,
                 chunksize: int = 1, step: Optional[str] = None):
        self.executor = executor
        self.tenant, self.job_id, self.kind, self.n = tenant, job_id, kind, n
        self.chunksize = chunksize
        self.step = step  # a pipeline's DAG: the step whose outputs are these futures'
        self.submitted = False
        self.done = threading.Event()
        self.done_msg: Optional[Dict[str, Any]] = None
        self.progress = 0  # tasks finished, from progress messages
        self.total = 0  # the job's tasks, from progress and done messages
        self.steps: List[str] = []  # a pipeline's DAG: its step names
        self.lock = threading.Lock()
        self._values: Optional[List[Any]] = None
        self._errors: Optional[Dict[int, BaseException]] = None
        self._job_error: Optional[BaseException] = None

    @property
    def status(self) -> Optional[str]:
        return self.done_msg.get("status") if self.done_msg else None

    def outcome(self, index: Optional[int]):
        """(value, exception) of one call, once the job is done; the results
        are fetched and decoded once per job."""
        with self.lock:
            if self._values is None and self._job_error is None:
                self.executor._resolve(self)
        if self._job_error is not None:
            return None, self._job_error
        if index is None:
            return self._values[0], None
        if self._errors and index in self._errors:
            return None, self._errors[index]
        return self._values[index], None


class ResponseFuture:
    """One call. .result(), .done, .ready, .running, .success, .error,
    .job_id, .call_id (its index in the job, None for a single call)."""

    def __init__(self, job: _Job, index: Optional[int], produce_output: bool = True):
        self._job = job
        self.call_id = index
        self._produce_output = produce_output
        self._read = False

    @property
    def job_id(self) -> str:
        return self._job.job_id

    @property
    def tenant(self) -> str:
        return self._job.tenant

    def _flush(self) -> None:
        if not self._job.submitted:
            self._job.executor._flush()

    @property
    def done(self) -> _Flag:
        self._flush()
        return _Flag(self._job.done.is_set())

    ready = done

    @property
    def running(self) -> _Flag:
        self._flush()
        return _Flag(not self._job.done.is_set())

    @property
    def success(self) -> _Flag:
        if not self._job.done.is_set():
            return _Flag(False)
        return _Flag(self._job.outcome(self.call_id)[1] is None)

    @property
    def error(self) -> _Flag:
        if not self._job.done.is_set():
            return _Flag(False)
        return _Flag(self._job.outcome(self.call_id)[1] is not None)

    def wait(self, timeout: Optional[float] = None) -> bool:
        self._flush()
        return self._job.done.wait(timeout)

    def exception(self, timeout: Optional[float] = None) -> Optional[BaseException]:
        if not self.wait(timeout):
            raise concurrent.futures.TimeoutError("job %s is not done after %ss"
                                                  % (self.job_id, timeout))
        return self._job.outcome(self.call_id)[1]

    def result(self, timeout: Optional[float] = None, throw_except: bool = True) -> Any:
        """The call's value; its exception raised here (throw_except)."""
        exc = self.exception(timeout)
        self._read = True
        if exc is not None:
            if throw_except:
                raise exc
            return None
        return self._job.outcome(self.call_id)[0]

    def __reduce__(self):
        """A future travels (a function returns it) as its job's names; the
        receiving process binds it to an executor of its own (no token,
        no connection in the pickle)."""
        self._flush()
        j = self._job
        return (_unpickle_future, ({"tenant": j.tenant, "job_id": j.job_id, "kind": j.kind,
                                    "n": j.n, "chunksize": j.chunksize, "step": j.step,
                                    "steps": list(j.steps)}, self.call_id))

    def cancel(self) -> bool:
        """Ask the engine to cancel this call's job (all calls of its map)."""
        return self._job.executor.cancel([self]) > 0

    def __repr__(self) -> str:
        state = self._job.status or ("running" if self._job.submitted else "staged")
        return "<ResponseFuture %s/%s#%s %s>" % (self.tenant, self.job_id, self.call_id, state)


def _unpickle_future(state, call_id):
    from .executor import adopt_future
    return adopt_future(state, call_id)


class FuturesList(list):
    """The futures of one map (a list) with .wait() and .get_result()."""

    def __init__(self, futures, executor):
        super().__init__(futures)
        self._executor = executor

    def __reduce__(self):  # travels as a plain list of futures
        return (list, (list(self),))

    def wait(self, **kw):
        return self._executor.wait(list(self), **kw)

    def get_result(self, **kw):
        return self._executor.get_result(list(self), **kw)

