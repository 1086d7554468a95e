"""The Python toolkit in five steps (toolkit/python/README.md).

Needs a stack (`cb up`, or $CB_API_URL) and the package:
    pip install ./toolkit/python        # or PYTHONPATH=toolkit/python
    python3 examples/python/toolkit_demo.py
The functions are this file's own: they travel with the jobs, nothing is
registered.
"""
import cbcore


def add7(x):
    return x + 7


def count_words(obj):
    """obj: the part of a text object this call reads (whole lines)."""
    return len(obj.data_stream.read().split())


def fragile(x):
    if x == 3:
        raise ValueError("3 is not welcome")
    return x


def main():
    with cbcore.FunctionExecutor() as fexec:
        # 1. a map
        fexec.map(add7, [1, 2, 3, 4])
        print("map:", fexec.get_result())

        # 2. a map and its reduce in one job
        print("map_reduce:", fexec.get_result(fexec.map_reduce(add7, [1, 2, 3, 4], sum)))

        # 3. a map over the objects of a storage prefix: a word count
        storage = cbcore.Storage()
        for i in range(3):
            storage.put_object("demo-corpus", "books/%d.txt" % i,
                               ("the quick brown fox jumps over the lazy dog\n" * 500).encode())
        words = fexec.map_reduce(count_words, "s3://demo-corpus/books/", sum,
                                 obj_chunk_size=4096)
        print("word count:", fexec.get_result(words))

        # 4. a remote exception, raised here with its type and remote traceback
        try:
            fexec.get_result(fexec.map(fragile, [1, 2, 3]))
        except ValueError as e:
            print("exception: %s: %s" % (type(e).__name__, e))
            print("remote traceback ends with:", e.remote_traceback.strip().splitlines()[-1])

        # 5. a pipeline: the second map takes the first one's futures; both
        #    run server-side in one job, the data never comes back between them
        first = fexec.map(add7, [1, 2, 3, 4])
        second = fexec.map(lambda v: v * 10, first)
        print("pipeline:", fexec.get_result(second))


if __name__ == "__main__":
    main()
