"""The object helpers of cbcore's Python runtime, under their older name.

The module itself is the toolkit's cbcore.objects (toolkit/python/cbcore/
objects.py, docs/storage.md); functions that `import cbcore_objects` keep
working.
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cbcore.objects import (ObjectChanged, ObjectRange, cache_stats, fetch_bytes,  # noqa: E402
                            fetch_ref, get, is_object_item, is_ref, open_store, resolve_refs,
                            split_url, storage)

__all__ = ["ObjectChanged", "ObjectRange", "cache_stats", "fetch_bytes", "fetch_ref", "get",
           "is_object_item", "is_ref", "open_store", "resolve_refs", "split_url", "storage"]
