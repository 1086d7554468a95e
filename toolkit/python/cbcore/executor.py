"""FunctionExecutor: Lithops' executor API over cbcore (toolkit/python/README.md).

    with cbcore.FunctionExecutor() as fexec:
        fexec.map(add7, [1, 2, 3, 4])
        print(fexec.get_result())          # [8, 9, 10, 11]

Each call ships the function (cloudpickle, content addressed in storage:
s3://RESULTS_BUCKET/code/<sha256>.pkl, written once) and submits one job
through cb-api; the job's done message comes on the tenant's server-sent
event stream, which one thread of the executor reads; nothing polls.

A map is submitted when the program next uses the executor or a future
(waits, asks for results, calls again): a map whose iterdata is the
previous map's futures joins it in one DAG job, so a pipeline runs
server-side without its data passing through the client.
"""
import atexit
import concurrent.futures
import hashlib
import json
import os
import sys
import sysconfig
import threading
import time
import uuid
import weakref
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from . import config as _config
from . import invoke
from .api import Api, ApiError
from .futures import (ALL_COMPLETED, ALWAYS, ANY_COMPLETED, FuturesList, JobFailed,
                      ResponseFuture, _Job, remote_exception)
from .storage import Storage

# A job's items must fit the engine's job size limit (900 KiB by default,
# docs/engine.md); a larger map is split into several jobs of this size.
MAX_ITEMS_BYTES = int(os.environ.get("CB_TOOLKIT_MAX_ITEMS_BYTES", str(640 << 10)))
STREAM_OPEN_TIMEOUT_S = 15.0
# the store folds a job's end this long after its done message at most (a
# bound for failures only; busy or sanitizer-slowed machines lag seconds)
STORE_LAG_S = float(os.environ.get("CB_STORE_WAIT_S", "60"))
DONE_FAILED_MAX = 1000  # a done message lists this many failed items at most
TERMINAL = ("succeeded", "failed", "cancelled", "rejected")
PLAN_TIMEOUT_S = 120.0  # a map over storage: until the engine listed and planned it


def _step(k: int) -> str:
    """A pipeline's step names, in the engine's index order (name order)."""
    return "s%03d" % k


def _is_url(x: Any) -> bool:
    return isinstance(x, str) and (x.startswith("s3://") or x.startswith("http://")
                                   or x.startswith("https://"))


def _user_module(fn: Any) -> Optional[Any]:
    """The module of fn when it is the caller's own code (not the standard
    library, an installed package or cbcore): cloudpickle ships it by value."""
    name = getattr(fn, "__module__", None)
    mod = sys.modules.get(name) if name else None
    path = getattr(mod, "__file__", None)
    if mod is None or name == "__main__" or not path or name.split(".")[0] == "cbcore":
        return None
    path = os.path.realpath(path)
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        root = sysconfig.get_paths().get(key)
        if root and path.startswith(os.path.realpath(root) + os.sep):
            return None
    if "-packages" + os.sep in path:
        return None
    return mod


class FunctionExecutor:
    """Runs Python functions on cbcore. Arguments as Lithops' (others it
    takes are accepted and ignored, see the README):

    api       cb-api's URL (default: $CB_API_URL or the `cb up` stack's)
    backend   the backend that runs the functions ("local")
    runtime   the backend's runtime for shipped Python ("python")
    config    a dict: api, token, tenant, storage (cbcore.config)
    max_workers  the jobs' parallelism (default: the engine's)
    tenant    the tenant the jobs run as (default: config, $CB_TENANT, "default")
    """

    def __init__(self, api: Optional[str] = None, backend: Optional[str] = None,
                 runtime: Optional[str] = None, config: Optional[Dict[str, Any]] = None,
                 max_workers: Optional[int] = None, tenant: Optional[str] = None,
                 storage: Optional[Dict[str, Any]] = None, **lithops_options: Any):
        self.config = dict(config or {})
        self.api = Api(_config.api_url(api, self.config), _config.token(self.config))
        self.backend = backend or "local"
        self.runtime = runtime or "python"
        self.tenant = tenant or _config.tenant(self.config)
        self.max_workers = max_workers
        self.storage = Storage(storage or _config.storage(self.config))
        self.python = "%d.%d" % sys.version_info[:2]
        # Lithops' runtime_memory: the function's memory_mb (the local backend
        # limits its process to it; a backend that cannot is refused by the engine)
        self.runtime_memory = lithops_options.pop("runtime_memory", None)
        self.ignored_options = dict(lithops_options)
        self.stats = {"uploads": 0, "jobs": 0}
        self._futures: List[ResponseFuture] = []
        self._jobs: Dict[str, List[_Job]] = {}  # job id -> its futures' jobs (a DAG: several)
        self._code: Dict[bytes, Dict[str, Any]] = {}  # pickle digest -> code reference
        self._staged: Optional[Dict[str, Any]] = None  # a map not yet submitted
        self._cond = threading.Condition()
        self._stream_thread: Optional[threading.Thread] = None
        self._stream_conn: list = []
        self._stream_error: Optional[BaseException] = None
        self._closed = False
        self._lock = threading.RLock()
        me = weakref.ref(self)
        atexit.register(lambda: me() is not None and me()._atexit())

    # ---- context manager -------------------------------------------------------

    def __enter__(self) -> "FunctionExecutor":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        """Submit what is staged and stop the stream reader (jobs go on)."""
        if self._closed:
            return
        try:
            self._flush()
        finally:
            self._closed = True
            for conn in self._stream_conn:
                try:
                    conn.sock and conn.sock.shutdown(2)
                except OSError:
                    pass
                conn.close()

    def _atexit(self) -> None:
        try:
            self.close()
        except Exception:  # noqa: BLE001  (nothing to tell at exit)
            pass

    clean = close

    # ---- shipping and submitting -----------------------------------------------

    def _ship(self, inv: invoke.Invocation) -> Dict[str, Any]:
        """The code reference of an Invocation, uploaded once."""
        import cloudpickle
        inv.tenant = self.tenant
        mods = [m for m in (_user_module(inv.fn),) if m is not None]
        for m in mods:
            cloudpickle.register_pickle_by_value(m)
        try:
            try:
                data = cloudpickle.dumps(inv)
            except Exception as e:  # noqa: BLE001  (what pickling raises is open)
                raise TypeError("the function %r cannot be shipped: %s"
                                % (getattr(inv.fn, "__name__", inv.fn), e)) from e
        finally:
            for m in mods:
                cloudpickle.unregister_pickle_by_value(m)
        key = hashlib.sha256(data).digest()
        ref = self._code.get(key)
        if ref is None:
            ref = self.storage.put_content_addressed(data, "code/", ".pkl")
            if ref.pop("written"):
                self.stats["uploads"] += 1
            self._code[key] = ref
        return ref

    def _function(self, inv: invoke.Invocation, timeout: Optional[float]) -> Dict[str, Any]:
        f = {"backend": self.backend, "name": self.runtime, "code": self._ship(inv),
             "python": self.python}
        if timeout:
            f["timeout_ms"] = int(timeout * 1000)
        if self.runtime_memory:
            f["memory_mb"] = int(self.runtime_memory)
        return f

    def _new_job_id(self) -> str:
        return "py-" + uuid.uuid4().hex[:24]

    def _ensure_stream(self) -> None:
        """The tenant's stream, open before the first submission: every done
        message published after it opened reaches the executor."""
        if self._stream_thread is not None and self._stream_thread.is_alive():
            return
        opened = threading.Event()
        self._stream_error = None
        t = threading.Thread(target=self._read_stream, args=(opened,), daemon=True,
                             name="cbcore-stream")
        self._stream_thread = t
        t.start()
        if not opened.wait(STREAM_OPEN_TIMEOUT_S):
            raise ConnectionError("cb-api's stream for tenant %s did not open within %ss: %s"
                                  % (self.tenant, STREAM_OPEN_TIMEOUT_S, self._stream_error))
        if self._stream_error is not None:
            raise self._stream_error

    def _read_stream(self, opened: threading.Event) -> None:
        first = True
        while not self._closed:
            self._stream_conn.clear()
            try:
                for event, data in self.api.stream("/v1/tenants/%s/stream" % self.tenant,
                                                   opened, self._stream_conn):
                    self._on_event(event, data)
            except Exception as e:  # noqa: BLE001  (told to the waiting caller)
                self._stream_error = e
                if first and not opened.is_set():
                    opened.set()
                    return
            if self._closed:
                return
            first = False
            time.sleep(0.5)  # reconnect after a pause; then catch up on what ended
            self._catch_up()

    def _catch_up(self) -> None:
        """After the stream reconnected: the jobs still open that ended while
        it was away (one request each)."""
        for jobs in list(self._jobs.values()):
            if jobs[0].submitted and not jobs[0].done.is_set():
                try:
                    self._check_done(jobs)
                except (ApiError, OSError):
                    continue

    def _check_done(self, jobs: List[_Job]) -> None:
        """Whether a job ended before the stream was there to tell: its
        result route answers from the job's done message, which the broker
        keeps (the store may lag it, docs/api.md); 409: still running, and
        the stream, open already, brings its end."""
        job = jobs[0]
        status, body = self.api.request("GET", "/v1/jobs/%s/%s/result" % (job.tenant, job.job_id))
        if status == 200:
            self._set_done(jobs, {"status": "succeeded", "job_id": job.job_id, "result": body})
        elif status == 422 and isinstance(body, dict):
            err = body.get("error") or {}
            self._set_done(jobs, {"status": body.get("status") or "failed", "job_id": job.job_id,
                                  "error": err.get("message")})

    def _on_event(self, event: str, data: str) -> None:
        try:
            msg = json.loads(data)
        except ValueError:
            return
        jobs = self._jobs.get(msg.get("job_id", "")) if isinstance(msg, dict) else None
        if not jobs:
            return
        if event == "done":
            self._set_done(jobs, msg)
        elif event == "progress":
            for job in jobs:
                job.progress = int(msg.get("succeeded", 0)) + int(msg.get("failed", 0))
                job.total = int(msg.get("total", 0))
            with self._cond:
                self._cond.notify_all()

    def _set_done(self, jobs: List[_Job], msg: Dict[str, Any]) -> None:
        for job in jobs:
            job.done_msg = msg
            job.total = int((msg.get("counts") or {}).get("total", job.total))
            job.done.set()
        with self._cond:
            self._cond.notify_all()

    def _submit(self, body: Dict[str, Any], jobs: List[_Job]) -> None:
        """Submit one job; `jobs`: the _Jobs of its futures (one, or a
        pipeline's steps), marked submitted."""
        job_id = jobs[0].job_id
        body.setdefault("tenant", self.tenant)
        body["job_id"] = job_id
        if self.max_workers and "parallelism" not in body:
            body["parallelism"] = int(self.max_workers)
        self._ensure_stream()
        self._jobs[job_id] = jobs
        try:
            self.api.submit(body)
        except BaseException:
            del self._jobs[job_id]
            for job in jobs:
                self._fail_unsubmitted(job)
            raise
        for job in jobs:
            job.submitted = True
        self.stats["jobs"] += 1

    def _flush(self) -> None:
        """Submit the staged map (or pipeline), if any."""
        with self._lock:
            staged, self._staged = self._staged, None
            if staged is None:
                return
            self._submit(staged["body"], staged["jobs"])

    def _fail_unsubmitted(self, job: _Job) -> None:
        job._job_error = RuntimeError("job %s was never submitted" % job.job_id)
        job.submitted = True
        job.done.set()

    # ---- results ---------------------------------------------------------------

    def _resolve(self, job: _Job) -> None:
        """Fetch and decode a done job's results (under job.lock)."""
        msg = job.done_msg or {}
        status = msg.get("status")
        if status == "cancelled":
            job._job_error = concurrent.futures.CancelledError("job %s was cancelled"
                                                               % job.job_id)
            return
        if status != "succeeded":
            job._job_error = self._job_failure(job, msg)
            return
        if job.step is not None:  # a pipeline's DAG: the step's collected outputs
            result = self._step_output(job)
        elif "result" in msg and ("counts" not in msg
                                  or '"$cb_ref"' not in json.dumps(msg["result"])):
            # the done message's (refs inside: read through the API), or the
            # result route's (_check_done: whole already)
            result = msg["result"]
        else:
            result = self.api.result(job.tenant, job.job_id)
        if job.kind == "single":  # call_async (a map of one item) or a reduce
            job._values = [invoke.decode(result[0] if job.n == 1 else result)]
            job._errors = {}
            return
        job._values = [invoke.decode(v) for v in result]
        job._errors = self._errors(job, msg) if msg.get("failed") else {}

    def _step_output(self, job: _Job) -> List[Any]:
        result = self.api.result(job.tenant, job.job_id)
        if isinstance(result, dict) and job.step in result:
            return result[job.step]
        self._wait_store(job, finished=True)
        index = sorted(job.steps).index(job.step)  # steps are indexed in name order
        page = self.api.tasks(job.tenant, job.job_id, after=index - 1 if index else None,
                              limit=1)
        return page["tasks"][0]["output"][0]

    def _errors(self, job: _Job, msg: Dict[str, Any]) -> Dict[int, BaseException]:
        """The exception of each failed call. Which calls failed: the done
        message's `failed` (its first 1000; past that, the store's task
        records); each task's error, reason and remote traceback: its last
        failed attempt in the job's events, read once."""
        failures = self._failures(job)
        listed = msg.get("failed") or []
        if len(listed) >= DONE_FAILED_MAX:
            listed = self._failed_items(job)
        errors: Dict[int, BaseException] = {}
        by_task: Dict[int, BaseException] = {}
        for entry in listed:
            index = int(entry["index"])
            task = index // job.chunksize
            if task not in by_task:
                error, tb, reason = failures.get(task, (None, None, None))
                by_task[task] = remote_exception(error or entry.get("error") or "failed", tb,
                                                 reason)
            errors[index] = by_task[task]
        return errors

    def _failed_items(self, job: _Job) -> List[Dict[str, Any]]:
        """{"index", "error"} of every failed call, from the store's task
        records (once the store folded the job's end)."""
        self._wait_store(job, finished=True)
        out: List[Dict[str, Any]] = []
        after = None
        while True:
            page = self.api.tasks(job.tenant, job.job_id, state="failed", after=after)
            for t in page.get("tasks", []):
                first = t["index"] * job.chunksize
                out.extend({"index": k, "error": t.get("error")}
                           for k in range(first, min(first + job.chunksize, job.n)))
            after = page.get("next")
            if after is None:
                return out

    def _wait_store(self, job: _Job, finished: bool) -> None:
        """Wait (bounded) until the store has the job (finished: its end).
        The done message comes before the projector folds the end (docs/api.md:
        milliseconds, more under a burst of events), and the job's events and
        task records are read through the store."""
        deadline = time.monotonic() + STORE_LAG_S
        while True:
            try:
                state = self.api.job(job.tenant, job.job_id)
                if not finished or state.get("status") in TERMINAL:
                    return
            except ApiError as e:
                if e.status != 404:
                    raise
            if time.monotonic() > deadline:
                raise TimeoutError("the store did not show job %s%s within %ss ($CB_STORE_WAIT_S)"
                                   % (job.job_id, " finished" if finished else "", STORE_LAG_S))
            time.sleep(0.02)

    def _failures(self, job: _Job) -> Dict[int, Tuple[Optional[str], Optional[str],
                                                       Optional[str]]]:
        """task index -> (error, remote traceback, reason) of its last failed
        attempt, from the job's events (the log; in log order, so the last
        failure of the job is the dict's last entry)."""
        self._wait_store(job, finished=False)
        out: Dict[int, Tuple[Optional[str], Optional[str], Optional[str]]] = {}
        after = None
        while True:
            page = self.api.events(job.tenant, job.job_id, after=after)
            for e in page.get("events", []):
                ev = e.get("event", {})
                data = ev.get("data") or {}
                task = int(data.get("task", -1))
                if ev.get("type") == "cb.task.failed":
                    out.pop(task, None)
                    out[task] = (data.get("error"), data.get("stderr"), data.get("reason"))
                elif ev.get("type") == "cb.task.timed_out":
                    out.pop(task, None)
                    out[task] = (data.get("error") or "timed out", None, "timeout")
            after = page.get("next")
            if after is None:
                return out

    def _job_failure(self, job: _Job, msg: Dict[str, Any]) -> BaseException:
        """What a failed job's calls raise: the function's own exception
        when a call's failure ended it (the last failure in the log), else
        JobFailed with the engine's reason."""
        error = msg.get("error") or msg.get("status") or "failed"
        failures = self._failures(job)
        if failures:
            last_error, tb, reason = list(failures.values())[-1]
            if last_error:
                exc = remote_exception(last_error, tb, reason)
                exc.job_error = error  # type: ignore[attr-defined]
                return exc
        return JobFailed(job.job_id, error)

    def _adopt(self, state: Dict[str, Any], call_id: Optional[int]) -> ResponseFuture:
        """A future another process made (a function returned it): its job
        joins this executor's; a job that ended before the stream opened is
        found by one read of its state."""
        job_id = state["job_id"]
        with self._lock:
            for j in self._jobs.get(job_id, []):
                if j.step == state["step"]:
                    return ResponseFuture(j, call_id)
            job = _Job(self, self.tenant, job_id, state["kind"], state["n"], state["chunksize"],
                       step=state["step"])
            job.steps = list(state["steps"])
            job.submitted = True
            self._ensure_stream()
            self._jobs.setdefault(job_id, []).append(job)
        if not job.done.is_set():
            self._check_done([job])
        return ResponseFuture(job, call_id)

    def _values_of(self, value: Any, timeout: Optional[float], throw_except: bool) -> Any:
        """A call's value, with the futures a function returned (one, or a
        list of them) replaced by their values, as Lithops' get_result does."""
        if isinstance(value, ResponseFuture):
            return self._values_of(value.result(timeout=timeout, throw_except=throw_except),
                                   timeout, throw_except)
        if isinstance(value, list) and value and all(isinstance(v, ResponseFuture)
                                                     for v in value):
            return [self._values_of(v, timeout, throw_except) for v in value]
        return value

    # ---- the Lithops API -------------------------------------------------------

    def call_async(self, func, data: Any, extra_env: Optional[Dict[str, str]] = None,
                   timeout: Optional[float] = None, retries: Optional[int] = None,
                   cache: bool = False, runtime_memory: Optional[int] = None,
                   **ignored: Any) -> ResponseFuture:
        """Run func(data) once (a tuple or list: positional arguments, a
        dict: keyword arguments); its future. cache: take the output of an
        earlier cached call of the same function on the same data instead
        of running it (docs/engine.md, Memoized tasks)."""
        self._flush()
        args, kwargs = self._call_args(data, None)
        inv = invoke.Invocation(func, "calls")
        job = _Job(self, self.tenant, self._new_job_id(), "single", 1)
        body = {"kind": "map", "function": self._function(inv, timeout),
                "input": {"items": [invoke.encode_call(args, kwargs)]}}
        if retries is not None:
            body["retry"] = {"limit": int(retries)}
        if cache:
            body["cache"] = True
        if runtime_memory:
            body["function"]["memory_mb"] = int(runtime_memory)
        self._submit(body, [job])
        f = ResponseFuture(job, None)
        self._futures.append(f)
        return f

    @staticmethod
    def _call_args(item: Any, extra_args: Any) -> Tuple[List[Any], Dict[str, Any]]:
        if isinstance(item, (tuple, list)):
            args, kwargs = list(item), {}
        elif isinstance(item, dict):
            args, kwargs = [], dict(item)
        else:
            args, kwargs = [item], {}
        if isinstance(extra_args, dict):
            kwargs.update(extra_args)
        elif extra_args is not None:
            args.extend(extra_args)
        return args, kwargs

    def _objects_input(self, iterdata: Any, obj_chunk_size: Optional[int],
                       obj_chunk_number: Optional[int], obj_newline: Optional[str]
                       ) -> Optional[Dict[str, Any]]:
        """The "objects" input of a map over storage, or None for values."""
        urls = [iterdata] if _is_url(iterdata) else None
        if urls is None and isinstance(iterdata, (list, tuple)) and iterdata and all(
                _is_url(u) for u in iterdata):
            urls = list(iterdata)
        if urls is None:
            return None
        spec: Dict[str, Any] = {}
        prefixes = [u for u in urls if u.startswith("s3://") and
                    (u.endswith("/") or "/" not in u[len("s3://"):])]
        if prefixes:
            if len(urls) != 1:
                raise ValueError("a map over storage takes one bucket or prefix "
                                 "(s3://BUCKET/ or s3://BUCKET/PREFIX/), or a list of objects")
            bucket, _, prefix = urls[0][len("s3://"):].partition("/")
            spec["bucket"] = bucket
            if prefix:
                spec["prefix"] = prefix
        else:
            spec["urls"] = urls
        if obj_chunk_size and obj_chunk_number:
            raise ValueError("give obj_chunk_size or obj_chunk_number, not both")
        if obj_chunk_size:
            spec["chunk_bytes"] = max(1024, int(obj_chunk_size))
        if obj_chunk_number:
            spec["chunk_number"] = int(obj_chunk_number)
        if obj_newline:
            spec["split"] = "lines"
        return {"objects": spec}

    def _map_body(self, map_function, map_iterdata, extra_args, chunksize, timeout, retries,
                  obj_chunk_size, obj_chunk_number, obj_newline
                  ) -> Tuple[List[Dict[str, Any]], List[int]]:
        """The bodies (several when the items are too large for one job) and
        their item counts."""
        objects = self._objects_input(map_iterdata, obj_chunk_size, obj_chunk_number,
                                      obj_newline)
        extra_kwargs = extra_args if isinstance(extra_args, dict) else None
        extra_pos = None if isinstance(extra_args, dict) else extra_args
        common: Dict[str, Any] = {"kind": "map", "tolerated_failures": "100%"}
        if chunksize:
            common["chunksize"] = int(chunksize)
        if retries is not None:
            common["retry"] = {"limit": int(retries)}
        if objects is not None or isinstance(map_iterdata, range):
            inv = invoke.Invocation(map_function, "value", extra_pos, extra_kwargs)
            common["function"] = self._function(inv, timeout)
            if objects is not None:  # one range per call
                common.pop("chunksize", None)
                return [dict(common, input=objects)], [-1]
            r = map_iterdata
            return [dict(common, input={"range": {"start": r.start, "stop": r.stop,
                                                  "step": r.step}})], [len(r)]
        inv = invoke.Invocation(map_function, "calls")
        common["function"] = self._function(inv, timeout)
        bodies, counts, items, size = [], [], [], 0
        for item in map_iterdata:
            enc = invoke.encode_call(*self._call_args(item, extra_args))
            n = len(json.dumps(enc, separators=(",", ":")))
            if items and size + n > MAX_ITEMS_BYTES:
                bodies.append(dict(common, input={"items": items}))
                counts.append(len(items))
                items, size = [], 0
            items.append(enc)
            size += n + 1
        bodies.append(dict(common, input={"items": items}))
        counts.append(len(items))
        return bodies, counts

    def map(self, map_function, map_iterdata, chunksize: Optional[int] = None,
            extra_args: Any = None, extra_env: Optional[Dict[str, str]] = None,
            runtime_memory: Optional[int] = None, obj_chunk_size: Optional[int] = None,
            obj_chunk_number: Optional[int] = None, obj_newline: Optional[str] = "\n",
            timeout: Optional[float] = None, retries: Optional[int] = None,
            include_modules: Any = None, exclude_modules: Any = None, cache: bool = False,
            **ignored: Any) -> FuturesList:
        """Run map_function once per item of map_iterdata; one future per
        call. map_iterdata: values (a tuple or list is positional arguments,
        a dict keyword arguments), a range, a storage URL, prefix or list of
        URLs (the function then gets an object handle, `obj`), or the
        futures of the previous map (a pipeline, one DAG job). cache: each
        chunk takes the outputs of an earlier cached map's chunk of the same
        function and items instead of running (docs/engine.md, Memoized
        tasks)."""
        if isinstance(map_iterdata, (list, tuple)) and map_iterdata and all(
                isinstance(f, ResponseFuture) for f in map_iterdata):
            return self._pipe(map_function, list(map_iterdata), extra_args, timeout, retries)
        self._flush()
        bodies, counts = self._map_body(map_function, map_iterdata, extra_args, chunksize,
                                        timeout, retries, obj_chunk_size, obj_chunk_number,
                                        obj_newline)
        futures: List[ResponseFuture] = []
        for body, n in zip(bodies, counts):
            if cache:
                body["cache"] = True
            if runtime_memory:
                body["function"]["memory_mb"] = int(runtime_memory)
            if n < 0:  # objects: the planner decides the count; ask the job
                futures.extend(self._object_futures(body))
                continue
            job = _Job(self, self.tenant, self._new_job_id(), "map", n, int(chunksize or 1))
            if len(bodies) == 1 and "items" in body["input"] and not extra_env:
                self._staged = {"body": body, "jobs": [job]}
            else:
                self._submit(body, [job])
            futures.extend(ResponseFuture(job, i) for i in range(n))
        self._futures.extend(futures)
        return FuturesList(futures, self)

    def _object_futures(self, body: Dict[str, Any]) -> List[ResponseFuture]:
        """A map over objects: submitted now; its futures once the engine
        planned the ranges (the job's task count)."""
        job = _Job(self, self.tenant, self._new_job_id(), "map", 0)
        self._submit(body, [job])
        with self._cond:  # the first progress message (or the done) has the count
            if not self._cond.wait_for(lambda: job.total > 0 or job.done.is_set(),
                                       timeout=PLAN_TIMEOUT_S):
                raise concurrent.futures.TimeoutError(
                    "the engine did not plan job %s within %ss" % (job.job_id, PLAN_TIMEOUT_S))
        if not job.total:  # failed before a plan (no such bucket, ...): one future says why
            return [ResponseFuture(job, None)]
        job.n = job.total
        return [ResponseFuture(job, i) for i in range(job.total)]

    def _pipe(self, fn, parents: List[ResponseFuture], extra_args, timeout, retries
              ) -> FuturesList:
        """map(fn, futures of the staged map): one DAG job, the data stays
        server-side."""
        staged = self._staged
        pjob = parents[0]._job
        if (staged is None or pjob not in staged["jobs"] or len(parents) != pjob.n
                or any(f._job is not pjob for f in parents)):
            # not the staged map: its values come through the client
            self._flush()
            values = [f.result() for f in parents]
            return self.map(fn, values, extra_args=extra_args, timeout=timeout, retries=retries)
        inv = invoke.Invocation(fn, "output", None if isinstance(extra_args, dict) else extra_args,
                                extra_args if isinstance(extra_args, dict) else None)
        body = staged["body"]
        if body["kind"] == "map":  # turn the staged map into a DAG: s0 (data) -> s1 (map)
            first = {"function": body["function"], "foreach": _step(0)}
            if "retry" in body:
                first["retry"] = body["retry"]
            body = {"kind": "dag", "tasks": {
                _step(0): {"function": {"backend": "local", "name": "echo"},
                           "input": body["input"]["items"]},
                _step(1): first}}
            staged["jobs"][0].step = _step(1)
            staged["body"] = body
        k = len(body["tasks"])
        step = {"function": self._function(inv, timeout), "foreach": _step(k - 1)}
        if retries is not None:
            step["retry"] = {"limit": int(retries)}
        body["tasks"][_step(k)] = step
        job = _Job(self, self.tenant, staged["jobs"][0].job_id, "map", pjob.n, 1, step=_step(k))
        staged["jobs"].append(job)
        for j in staged["jobs"]:
            j.steps = list(body["tasks"])
        futures = [ResponseFuture(job, i) for i in range(pjob.n)]
        self._futures.extend(futures)
        return FuturesList(futures, self)

    def map_reduce(self, map_function, map_iterdata, reduce_function,
                   chunksize: Optional[int] = None, extra_args: Any = None,
                   extra_env: Optional[Dict[str, str]] = None,
                   obj_chunk_size: Optional[int] = None, obj_chunk_number: Optional[int] = None,
                   obj_newline: Optional[str] = "\n", obj_reduce_by_key: bool = False,
                   reducer_one_per_object: bool = False, timeout: Optional[float] = None,
                   retries: Optional[int] = None, cache: bool = False,
                   **ignored: Any) -> FuturesList:
        """map_function over map_iterdata, then reduce_function(list of the
        map's results) in the same job; one future, the reduce's. With
        obj_reduce_by_key (or reducer_one_per_object), one job and one
        reduce per object of a storage prefix."""
        self._flush()
        if obj_reduce_by_key or reducer_one_per_object:
            urls = self._object_urls(map_iterdata)
            futures: List[ResponseFuture] = []
            for url in urls:
                futures.extend(self.map_reduce(map_function, [url], reduce_function,
                                               chunksize, extra_args, extra_env, obj_chunk_size,
                                               obj_chunk_number, obj_newline, False, False,
                                               timeout, retries, cache))
            return FuturesList(futures, self)
        bodies, counts = self._map_body(map_function, map_iterdata, extra_args, chunksize,
                                        timeout, retries, obj_chunk_size, obj_chunk_number,
                                        obj_newline)
        if len(bodies) != 1:
            raise ValueError("map_reduce's items are over %d bytes, too large for one job: "
                             "put the data in storage and map over it" % MAX_ITEMS_BYTES)
        body = bodies[0]
        body["kind"] = "map_reduce"
        if cache:
            body["cache"] = True
        del body["tolerated_failures"]  # a reduce needs every output
        body["reduce"] = {"function": self._function(invoke.Invocation(reduce_function, "reduce"),
                                                     timeout)}
        job = _Job(self, self.tenant, self._new_job_id(), "single", 0)
        self._submit(body, [job])
        f = ResponseFuture(job, None)
        self._futures.append(f)
        return FuturesList([f], self)

    def _object_urls(self, iterdata: Any) -> List[str]:
        """The objects a bucket or prefix names (for one reduce per object)."""
        spec = (self._objects_input(iterdata, None, None, None) or {}).get("objects")
        if not spec:
            raise ValueError("obj_reduce_by_key needs a map over storage objects")
        if "urls" in spec:
            return spec["urls"]
        return ["s3://%s/%s" % (spec["bucket"], k)
                for k in self.storage.list_keys(spec["bucket"], spec.get("prefix", ""))]

    # ---- waiting ---------------------------------------------------------------

    def _pending(self, fs: Optional[Sequence[ResponseFuture]]) -> List[ResponseFuture]:
        if fs is None:
            return [f for f in self._futures if not f._read]
        if isinstance(fs, ResponseFuture):
            return [fs]
        return list(fs)

    def wait(self, fs: Optional[Sequence[ResponseFuture]] = None, throw_except: bool = True,
             return_when: int = ALL_COMPLETED, download_results: bool = False,
             timeout: Optional[float] = None, show_progressbar: bool = True, **ignored: Any
             ) -> Tuple[List[ResponseFuture], List[ResponseFuture]]:
        """(done, not_done) once return_when holds: ALL_COMPLETED, ANY_COMPLETED
        or ALWAYS (at once); TimeoutError after `timeout` seconds."""
        self._flush()
        fs = self._pending(fs)
        jobs = list({id(f._job): f._job for f in fs}.values())
        deadline = None if timeout is None else time.monotonic() + timeout
        bar = _Progress(sum(j.n for j in jobs), show_progressbar and return_when == ALL_COMPLETED)
        try:
            while True:
                finished = [j for j in jobs if j.done.is_set()]
                bar.update(sum(j.n if j.done.is_set() else min(j.n, j.progress * j.chunksize)
                               for j in jobs))
                if (return_when == ALWAYS or len(finished) == len(jobs)
                        or (return_when == ANY_COMPLETED and finished)):
                    break
                if self._stream_error is not None and not (self._stream_thread and
                                                           self._stream_thread.is_alive()):
                    raise ConnectionError("cb-api's stream was lost: %s" % self._stream_error)
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise concurrent.futures.TimeoutError(
                        "%d of %d jobs not done after %ss" % (len(jobs) - len(finished), len(jobs),
                                                              timeout))
                with self._cond:
                    self._cond.wait(0.5 if left is None else min(0.5, left))
        finally:
            bar.close()
        done = [f for f in fs if f._job.done.is_set()]
        not_done = [f for f in fs if not f._job.done.is_set()]
        if throw_except:
            for f in done:
                exc = f._job.outcome(f.call_id)[1]
                if exc is not None:
                    raise exc
        return done, not_done

    def get_result(self, fs: Optional[Union[ResponseFuture, Sequence[ResponseFuture]]] = None,
                   throw_except: bool = True, timeout: Optional[float] = None,
                   progressbar: bool = True, **ignored: Any) -> Any:
        """The values of fs (default: every future not yet read, in call
        order): a list, or the value itself for one call_async or map_reduce
        future."""
        single = isinstance(fs, ResponseFuture)
        futures = [f for f in self._pending(fs) if f._produce_output]
        self.wait(futures, throw_except=throw_except, timeout=timeout,
                  show_progressbar=progressbar)
        values = [self._values_of(f.result(throw_except=throw_except), timeout, throw_except)
                  for f in futures]
        if single or (len(futures) == 1 and futures[0].call_id is None):
            return values[0] if values else None
        return values

    def cancel(self, fs: Optional[Sequence[ResponseFuture]] = None) -> int:
        """Cancel the jobs of fs (default: every job not done); the number
        of jobs the engine took the command for. Their futures raise
        concurrent.futures.CancelledError."""
        self._flush()
        jobs = {id(f._job): f._job for f in self._pending(fs) if not f._job.done.is_set()}
        n = 0
        for job in jobs.values():
            try:
                self.api.control(job.tenant, job.job_id, "cancel")
                n += 1
            except ApiError as e:
                if e.status not in (404, 409):
                    raise
        return n


    def retry(self, fs: Optional[Sequence[ResponseFuture]] = None) -> FuturesList:
        """Run the jobs of fs (default: every future of this executor) that
        failed, were cancelled or lost calls again, each as a new job whose
        calls that succeeded are not run again (docs/engine.md, Re-running a job); the new
        futures, one for each of fs's of those jobs, in the same order."""
        self._flush()
        fs = list(self._futures if fs is None else fs)
        redone: Dict[str, Dict[int, _Job]] = {}  # old job id -> id(old _Job) -> new _Job
        for f in fs:
            old = f._job
            if old.job_id in redone or not old.done.is_set():
                continue
            lost = ((old.done_msg or {}).get("counts") or {}).get("failed", 0)
            if old.status not in ("failed", "cancelled") and not (old.status == "succeeded"
                                                                  and lost):
                continue
            new_id = self._new_job_id()
            olds = self._jobs.get(old.job_id, [old])
            news = {}
            for o in olds:
                n = _Job(self, o.tenant, new_id, o.kind, o.n, o.chunksize, o.step)
                n.steps = list(o.steps)
                news[id(o)] = n
            self._ensure_stream()
            self._jobs[new_id] = list(news.values())
            try:
                self.api.retry(old.tenant, old.job_id, new_id)
            except BaseException:
                del self._jobs[new_id]
                raise
            for n in news.values():
                n.submitted = True
            self.stats["jobs"] += 1
            redone[old.job_id] = news
        futures = [ResponseFuture(redone[f._job.job_id][id(f._job)], f.call_id)
                   for f in fs if f._job.job_id in redone]
        self._futures.extend(futures)
        return FuturesList(futures, self)


class _Progress:
    """A progress bar (tqdm) when the caller sees a terminal or a notebook."""

    def __init__(self, total: int, wanted: bool):
        self.bar = None
        if not wanted or total <= 1 or os.environ.get("CB_NO_PROGRESS"):
            return
        interactive = sys.stderr.isatty() or "ipykernel" in sys.modules
        if not interactive:
            return
        try:
            if "ipykernel" in sys.modules:
                from tqdm.auto import tqdm
            else:
                from tqdm import tqdm
        except ImportError:
            return
        self.bar = tqdm(total=total, unit="call")
        self.n = 0

    def update(self, n: int) -> None:
        if self.bar is not None and n > self.n:
            self.bar.update(n - self.n)
            self.n = n

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


_adopters: Dict[str, FunctionExecutor] = {}
_adopters_lock = threading.Lock()


def adopt_future(state: Dict[str, Any], call_id: Optional[int]) -> ResponseFuture:
    """A future unpickled here (a function returned it): bound to an
    executor of this process for its tenant, made on first use."""
    with _adopters_lock:
        ex = _adopters.get(state["tenant"])
        if ex is None or ex._closed:
            ex = _adopters[state["tenant"]] = FunctionExecutor(tenant=state["tenant"])
    return ex._adopt(state, call_id)
