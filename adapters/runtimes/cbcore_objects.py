"""The object helpers of cbcore's Python runtime, under their older name.

The module itself is the toolkit's cbcore.objects (toolkit/python/cbcore/
objects.py, docs/storage.md); functions that `import cbcore_objects` keep
working: ObjectRange, get, cache_stats, resolve_refs, fetch_ref, ...
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from cbcore.objects import *  # noqa: E402,F401,F403  (the one implementation)
