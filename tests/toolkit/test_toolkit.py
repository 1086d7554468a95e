"""The Python toolkit against a real stack (tests/it_toolkit.sh starts it with
`cb up` on the suite's broker and installs the package with pip): every
call, the argument forms, exceptions, timeouts, cancel, storage, a pipeline,
a 10,000-item map, two executors at once, shipped code kept once.

Run by tests/it_toolkit.sh with Debian's python3-pytest; needs CB_DIR (the
stack) in the environment. Every wait is bounded.
"""
import collections
import concurrent.futures
import os
import threading
import time

import pytest

import cbcore

WAIT = 120  # seconds: the bound of every wait


class MyError(Exception):
    """An exception of the caller's own module: shipped by value, raised back as itself."""


def add7(x):
    return x + 7


def add(x, y, z=0):
    return x + y + z


def boom(x):
    if x == 3:
        raise MyError("item 3 is bad")
    return x


def who(x, id):  # Lithops: a parameter named id is the call's index
    return [x, id]


def _noop(x):
    return x


@pytest.fixture(scope="module")
def fexec():
    with cbcore.FunctionExecutor() as ex:
        yield ex


@pytest.fixture(scope="module")
def st():
    return cbcore.Storage()


def test_map_add7(fexec):
    fexec.map(add7, [1, 2, 3, 4])
    assert fexec.get_result(timeout=WAIT) == [8, 9, 10, 11]


def test_call_async_forms(fexec):
    assert fexec.call_async(add7, 3).result(timeout=WAIT) == 10
    assert fexec.call_async(add, (1, 2)).result(timeout=WAIT) == 3
    assert fexec.call_async(add, {"x": 1, "y": 2, "z": 3}).result(timeout=WAIT) == 6
    f = fexec.call_async(add7, 5)
    assert fexec.get_result(f, timeout=WAIT) == 12
    assert f.job_id and f.done and f.done() and f.ready and f.success and not f.error


def test_map_reduce(fexec):
    assert fexec.get_result(fexec.map_reduce(add7, [1, 2, 3, 4], sum), timeout=WAIT) == 38


def test_argument_forms(fexec):
    fs = fexec.map(add, [(1, 2), [3, 4], {"x": 5, "y": 6, "z": 7}])
    assert fexec.get_result(fs, timeout=WAIT) == [3, 7, 18]
    fs = fexec.map(add, [1, 2], extra_args=(10,))
    assert fexec.get_result(fs, timeout=WAIT) == [11, 12]
    fs = fexec.map(add, [(1, 2), (3, 4)], extra_args={"z": 100})
    assert fexec.get_result(fs, timeout=WAIT) == [103, 107]
    assert fexec.get_result(fexec.map(add7, range(0, 10, 3)), timeout=WAIT) == [7, 10, 13, 16]
    assert fexec.get_result(fexec.map(who, ["a", "b", "c"]), timeout=WAIT) == [
        ["a", 0], ["b", 1], ["c", 2]]
    # chunks: several calls per invocation keep their own index and value
    fs = fexec.map(who, list("abcde"), chunksize=2)
    assert fexec.get_result(fs, timeout=WAIT) == [[c, i] for i, c in enumerate("abcde")]


def test_values_json_cannot_carry(fexec):
    import fractions
    fs = fexec.map(lambda s: {x * 2 for x in s}, [{1, 2}, frozenset([3])])
    assert fexec.get_result(fs, timeout=WAIT) == [{2, 4}, {6}]
    f = fexec.call_async(lambda q: q * 2, fractions.Fraction(1, 3))
    assert f.result(timeout=WAIT) == fractions.Fraction(2, 3)


def test_shipped_by_value(fexec):
    n = 100

    def closure(x):
        return x + n

    class Scaler:
        def __init__(self, k):
            self.k = k

        def scale(self, x):
            return x * self.k

    assert fexec.get_result(fexec.map(lambda x: x * x, [1, 2, 3]), timeout=WAIT) == [1, 4, 9]
    assert fexec.get_result(fexec.map(closure, [1, 2]), timeout=WAIT) == [101, 102]
    assert fexec.get_result(fexec.map(Scaler(3).scale, [1, 2]), timeout=WAIT) == [3, 6]


def test_exception_type_and_remote_traceback(fexec):
    fs = fexec.map(boom, [1, 2, 3, 4])
    with pytest.raises(MyError) as info:
        fexec.get_result(fs, timeout=WAIT)
    assert str(info.value) == "item 3 is bad"
    tb = info.value.remote_traceback
    assert "in boom" in tb and "MyError: item 3 is bad" in tb
    assert isinstance(info.value.__cause__, cbcore.futures.RemoteTraceback)
    # the other calls of the map succeeded on their own
    assert [bool(f.success) for f in fs] == [True, True, False, True]
    assert fexec.get_result(fs, throw_except=False, timeout=WAIT) == [1, 2, None, 4]
    with pytest.raises(MyError):
        fs[2].result()
    # an exception type unknown here: RemoteError with the remote type's name
    def weird(x):
        class Weird(Exception):
            pass
        raise Weird("no such type here")
    with pytest.raises(cbcore.RemoteError) as info:
        fexec.call_async(weird, 1).result(timeout=WAIT)
    assert "Weird" in info.value.type_name and info.value.message == "no such type here"
    # a builtin type, from a call_async (the job fails as a whole)
    with pytest.raises(ZeroDivisionError) as info:
        fexec.call_async(lambda x: 1 / x, 0).result(timeout=WAIT)
    assert "division by zero" in str(info.value)
    # a reduce over a failed map raises the map's exception
    with pytest.raises(MyError):
        fexec.get_result(fexec.map_reduce(boom, [1, 3], sum), timeout=WAIT)


def test_more_failures_than_a_done_message_lists(fexec):
    # the done message names the first 1000 failed items; the rest come from the store
    fs = fexec.map(lambda x: 1 / (x % 2), range(2600), chunksize=2, retries=0)
    fexec.wait(fs, throw_except=False, timeout=WAIT)
    failed = [f.call_id for f in fs if f.error]
    assert failed == list(range(2600))  # chunks of two: each chunk has an even item
    assert all(isinstance(f.exception(), ZeroDivisionError) for f in fs[-4:])
    fs = fexec.map(lambda x: 1 / (x % 2), range(2400), retries=0)
    fexec.wait(fs, throw_except=False, timeout=WAIT)
    assert [f.call_id for f in fs if f.error] == list(range(0, 2400, 2))
    assert fs[2399].result() == 1.0 and isinstance(fs[2398].exception(), ZeroDivisionError)


def test_not_shippable(fexec):
    lock = threading.Lock()

    def holds_lock(x):
        with lock:
            return x
    with pytest.raises(TypeError, match="cannot be shipped"):
        fexec.map(holds_lock, [1])


def test_timeouts(fexec):
    # the function's own limit: the call fails with the engine's reason
    fs = fexec.map(lambda s: time.sleep(s) or s, [0, 30], timeout=1, retries=0)
    done, not_done = fexec.wait(fs, throw_except=False, timeout=WAIT)
    assert not not_done
    assert fs[0].result() == 0
    exc = fs[1].exception()
    assert isinstance(exc, TimeoutError) and "within 1000 ms" in str(exc)
    # the client's wait limit
    slow = fexec.call_async(lambda s: time.sleep(s) or s, 3)
    with pytest.raises(concurrent.futures.TimeoutError):
        fexec.get_result(slow, timeout=0.2)
    assert slow.result(timeout=WAIT) == 3


def test_wait_any(fexec):
    quick = fexec.call_async(_noop, 1)
    slow = fexec.call_async(lambda s: time.sleep(s) or s, 4)
    done, not_done = fexec.wait([quick, slow], return_when=cbcore.ANY_COMPLETED, timeout=WAIT)
    assert quick in done and slow in not_done
    done, not_done = fexec.wait([quick, slow], return_when=cbcore.ALWAYS)
    assert quick in done
    assert slow.result(timeout=WAIT) == 4


def test_get_result_collects_in_call_order():
    with cbcore.FunctionExecutor() as ex:
        ex.map(add7, [1, 2])
        ex.call_async(add7, 10)
        ex.map(add7, [100])
        assert ex.get_result(timeout=WAIT) == [8, 9, 17, 107]
        ex.call_async(add7, 0)
        assert ex.get_result(timeout=WAIT) == 7  # one call: the value itself


def spawner(n):
    with cbcore.FunctionExecutor() as ex:
        return ex.get_result(ex.map(add7, range(n)), timeout=60)


def returns_futures(n):
    ex = cbcore.FunctionExecutor()
    return ex.map(add7, range(n))


def test_functions_run_jobs_themselves(fexec):
    # a function that makes an executor and waits for its map
    assert fexec.call_async(spawner, 3).result(timeout=WAIT) == [7, 8, 9]
    # one that returns futures: the caller's get_result resolves them
    assert fexec.get_result(fexec.call_async(returns_futures, 4), timeout=WAIT) == [7, 8, 9, 10]
    fs = fexec.map(returns_futures, [1, 2])
    assert fexec.get_result(fs, timeout=WAIT) == [[7], [7, 8]]


def test_pipeline_is_one_dag_job(fexec):
    jobs = fexec.stats["jobs"]
    first = fexec.map(add7, [1, 2, 3])
    second = fexec.map(lambda v: v * 10, first)
    assert fexec.get_result(second, timeout=WAIT) == [80, 90, 100]
    assert fexec.stats["jobs"] == jobs + 1
    assert first[0].job_id == second[0].job_id
    assert fexec.api.job(fexec.tenant, first[0].job_id)["kind"] == "dag"
    assert [f.result() for f in first] == [8, 9, 10]  # the inner step's outputs
    # three steps
    third = fexec.map(lambda v: -v, fexec.map(add7, fexec.map(add7, [0, 1])))
    assert fexec.get_result(third, timeout=WAIT) == [-14, -15]


def test_storage_and_storage_parameter(fexec, st):
    st.put_object("tkdata", "hello.txt", b"hello world")
    assert st.get_object("tkdata", "hello.txt") == b"hello world"
    assert st.get_object("tkdata", "hello.txt", stream=True).read() == b"hello world"
    assert "hello.txt" in st.list_keys("tkdata")
    co = st.put_cloudobject({"a": [1, 2]})
    assert st.get_cloudobject(co) == {"a": [1, 2]}

    def writes(x, storage):
        storage.put_object("tkdata", "out/%d" % x, str(x * 2).encode())
        return storage.get_object("tkdata", "hello.txt").decode()
    assert fexec.get_result(fexec.map(writes, [1, 2]), timeout=WAIT) == ["hello world"] * 2
    assert st.get_object("tkdata", "out/2") == b"4"
    st.delete_object("tkdata", "out/1")
    assert st.list_keys("tkdata", prefix="out/") == ["out/2"]

    # a value kept in storage by the client, read by the function
    co = st.put_cloudobject(list(range(10)))
    f = fexec.call_async(lambda c, storage: sum(storage.get_cloudobject(c)), (co,))
    assert f.result(timeout=WAIT) == 45


def count_words(obj):
    return len(obj.data_stream.read().split())


def test_map_over_storage_prefix(fexec, st):
    texts = {"wc/a.txt": "one two three\n" * 300, "wc/b.txt": "four five\n" * 500,
             "wc/c.txt": "six\n"}
    for key, text in texts.items():
        st.put_object("tkcorpus", key, text.encode())
    total = sum(len(t.split()) for t in texts.values())
    fs = fexec.map_reduce(count_words, "s3://tkcorpus/wc/", sum, obj_chunk_size=1024)
    assert fexec.get_result(fs, timeout=WAIT) == total
    fs = fexec.map(lambda obj: [obj.bucket, obj.key, obj.chunk_size, obj.part], "s3://tkcorpus/wc/",
                   obj_chunk_size=1024)
    out = fexec.get_result(fs, timeout=WAIT)
    assert len(out) > 3  # several ranges per object
    assert {tuple(o[:2]) for o in out} == {("tkcorpus", k) for k in texts}
    for key, text in texts.items():  # each object's ranges: parts 0.., 1024 bytes but the last
        mine = [o for o in out if o[1] == key]
        assert [o[3] for o in mine] == list(range(len(mine)))
        assert sum(o[2] for o in mine) == len(text) and all(o[2] == 1024 for o in mine[:-1])
    fs = fexec.map_reduce(count_words, "s3://tkcorpus/wc/", sum, obj_chunk_size=1024,
                          obj_reduce_by_key=True)
    assert fexec.get_result(fs, timeout=WAIT) == [len(texts[k].split()) for k in sorted(texts)]


def test_large_map(fexec):
    n = 10000
    fs = fexec.map(add7, range(n), chunksize=20)
    assert fexec.get_result(fs, timeout=WAIT) == [i + 7 for i in range(n)]
    items = [(i, i) for i in range(n)]  # explicit items, several jobs when large
    assert fexec.get_result(fexec.map(add, items, chunksize=50), timeout=WAIT) == [
        2 * i for i in range(n)]


def test_two_executors_at_once():
    out = {}

    def run(name, k):
        with cbcore.FunctionExecutor() as ex:
            out[name] = ex.get_result(ex.map(lambda x: x * k, range(50)), timeout=WAIT)
    threads = [threading.Thread(target=run, args=("a", 2)),
               threading.Thread(target=run, args=("b", 3))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT)
    assert out == {"a": [2 * i for i in range(50)], "b": [3 * i for i in range(50)]}


def test_shipped_code_kept_once(st):
    def square_plus(x):
        return x * x + 1
    with cbcore.FunctionExecutor() as ex:
        before = set(st.list_keys(st.bucket, prefix="code/"))
        for _ in range(3):
            assert ex.get_result(ex.map(square_plus, [1, 2]), timeout=WAIT) == [2, 5]
        assert ex.stats["uploads"] == 1 and ex.stats["jobs"] == 3
        assert len(set(st.list_keys(st.bucket, prefix="code/")) - before) == 1
    with cbcore.FunctionExecutor() as ex:  # another client: the object is there already
        assert ex.get_result(ex.map(square_plus, [3]), timeout=WAIT) == [10]
        assert ex.stats["uploads"] == 0


def test_bad_input_is_a_clear_error(fexec):
    with pytest.raises(ValueError, match="one bucket or prefix"):
        fexec.map(count_words, ["s3://a-bucket/x/", "s3://b-bucket/y/"])
    with cbcore.FunctionExecutor(backend="no-such-backend") as ex:
        with pytest.raises(cbcore.ApiError) as info:
            ex.call_async(add7, 1)
        assert info.value.status == 400 and "backend" in str(info.value)


def test_lithops_names():
    import cbcore as lithops
    assert lithops.FunctionExecutor is lithops.ServerlessExecutor
    with lithops.FunctionExecutor(config={"lithops": {"backend": "x"}}, max_workers=4,
                                  runtime_memory=512) as ex:
        fs = ex.map(add7, [1, 2])
        done, not_done = lithops.wait(fs, timeout=WAIT)
        assert len(done) == 2 and not not_done
        assert lithops.get_result(fs) == [8, 9]
        assert collections.Counter(type(f).__name__ for f in fs) == {"ResponseFuture": 2}


@pytest.mark.parametrize("backend", os.environ["CB_TEST_SHIPPED_BACKENDS"].split())
def test_remote_backend_runs_shipped_code(backend, st):
    """An http account on a cbcore function server (json and CloudEvents modes)."""
    with cbcore.FunctionExecutor(backend=backend) as ex:
        assert ex.get_result(ex.map(add7, [1, 2, 3, 4]), timeout=WAIT) == [8, 9, 10, 11]
        assert ex.get_result(ex.map(who, ["a", "b"]), timeout=WAIT) == [["a", 0], ["b", 1]]
        assert ex.get_result(ex.map_reduce(add7, [1, 2, 3, 4], sum), timeout=WAIT) == 38
        assert ex.call_async(lambda s: {s}, "x").result(timeout=WAIT) == {"x"}
        st.put_object("tkdata", "remote.txt", b"from storage")
        f = ex.call_async(lambda k, storage: storage.get_object("tkdata", k).decode(),
                          "remote.txt")
        assert f.result(timeout=WAIT) == "from storage"
        fs = ex.map(boom, [1, 3])
        with pytest.raises(MyError) as info:
            ex.get_result(fs, timeout=WAIT)
        assert str(info.value) == "item 3 is bad" and "in boom" in info.value.remote_traceback
        assert fs[0].result() == 1


def test_shipped_code_only_where_it_runs():
    """Code for an http account that is no function server is refused at intake."""
    with cbcore.FunctionExecutor(backend=os.environ["CB_TEST_PLAIN_HTTP"]) as ex:
        with pytest.raises(cbcore.ApiError) as info:
            ex.call_async(add7, 1)
        assert info.value.status == 400 and "/function" in str(info.value)


def test_cached_map_runs_once(fexec):
    # the second map of the same function on the same items takes the
    # first's outputs: its job counts them memoized
    items = [time.time_ns(), 2, 3]  # fresh: no earlier run of the suite matches
    first = fexec.map(add7, items, cache=True)
    assert fexec.get_result(first, timeout=WAIT) == [x + 7 for x in items]
    again = fexec.map(add7, items, cache=True)
    assert fexec.get_result(again, timeout=WAIT) == [x + 7 for x in items]
    assert again[0]._job.done_msg["counts"]["memoized"] == 3
    assert "memoized" not in first[0]._job.done_msg["counts"]


def gated(gate, v):  # a dict item is keyword arguments
    if not os.path.exists(gate):
        raise MyError("the gate is closed")
    return v + 1


def test_retry_runs_only_the_failed_calls(fexec, tmp_path):
    gate = str(tmp_path / "gate")
    fs = fexec.map(gated, [{"gate": "/", "v": 1}, {"gate": gate, "v": 2}])
    done, _ = fexec.wait(fs, throw_except=False, timeout=WAIT)
    assert len(done) == 2 and fs[0].result() == 2
    with pytest.raises(MyError):
        fs[1].result()
    open(gate, "w").close()
    again = fexec.retry(fs)
    assert len(again) == 2 and again[0].job_id != fs[0].job_id
    assert fexec.get_result(again, timeout=WAIT) == [2, 3]
    assert again[0]._job.done_msg["counts"]["memoized"] == 1  # the call that succeeded
    assert fexec.retry(again) == []  # it succeeded: nothing to run again


def hog(mb):
    return len(bytearray(mb << 20)) >> 20


def test_runtime_memory_limits_the_call(fexec):
    # Lithops' runtime_memory is the function's memory_mb: the local
    # backend's runtime gets no more
    assert fexec.call_async(hog, 8, runtime_memory=128).result(timeout=WAIT) == 8
    with pytest.raises(MemoryError):
        fexec.call_async(hog, 400, runtime_memory=128).result(timeout=WAIT)


def test_cancel(fexec):
    # last: the calls already running finish their sleep (cancel stops the
    # job: nothing more is dispatched and late outcomes are ignored)
    fs = fexec.map(lambda s: time.sleep(s), [5] * 4)
    assert not fs[0].done  # submitted, running
    assert fexec.cancel(fs) == 1
    done, not_done = fexec.wait(fs, throw_except=False, timeout=WAIT)
    assert len(done) == 4 and not not_done
    with pytest.raises(concurrent.futures.CancelledError):
        fs[0].result()


def test_token_from_the_file_cb_tenant_add_prints(tmp_path, monkeypatch):
    from cbcore import config
    monkeypatch.delenv("CB_API_TOKEN", raising=False)
    monkeypatch.delenv("CB_API_TOKEN_FILE", raising=False)
    monkeypatch.setenv("CB_DIR", str(tmp_path))
    assert config.token() is None
    (tmp_path / "alice.token").write_text("t0k3n\n")
    monkeypatch.setenv("CB_API_TOKEN_FILE", str(tmp_path / "alice.token"))
    assert config.token() == "t0k3n"
    assert config.token({"token": "given"}) == "given"
    monkeypatch.setenv("CB_API_TOKEN_FILE", str(tmp_path / "missing"))
    with pytest.raises(config.ConfigError):
        config.token()
    # inside a function the stack runs: the job's tenant's token
    monkeypatch.delenv("CB_API_TOKEN_FILE")
    (tmp_path / "identities").mkdir()
    (tmp_path / "identities" / "bob.token").write_text("b0b\n")
    reset = config.current_tenant.set("bob")
    try:
        assert config.token() == "b0b"
    finally:
        config.current_tenant.reset(reset)
