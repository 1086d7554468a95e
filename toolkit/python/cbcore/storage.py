"""Lithops' Storage API over cbcore's storage (docs/storage.md).

    st = Storage()                     # in a function: the adapter's storage;
                                       # in the client: the toolkit's (cbcore.config)
    st.put_object("data", "a.txt", b"...")
    st.get_object("data", "a.txt")     # bytes (stream=True: a file-like object)
    st.list_keys("data", prefix="a")   # keys in order
    st.delete_object("data", "a.txt")
    co = st.put_cloudobject(value)     # any picklable value -> a CloudObject
    st.get_cloudobject(co)             # the value

A function that has a parameter named `storage` receives a Storage of the
adapter it runs in.
"""
import hashlib
import io
import os
import pickle
import uuid
from typing import Any, Dict, List, Optional

from . import config as _config
from . import objects


class CloudObject:
    """A value kept in storage by put_cloudobject: .backend .bucket .key."""

    def __init__(self, backend: str, bucket: str, key: str):
        self.backend, self.bucket, self.key = backend, bucket, key

    def __repr__(self) -> str:
        return "CloudObject(%s://%s/%s)" % (self.backend, self.bucket, self.key)


class Storage:
    """Objects of one cbcore storage. `config`: a "storage" object
    (docs/storage.md); default the adapter's ($CB_STORAGE, inside a
    function) or the toolkit's (cbcore.config.storage)."""

    def __init__(self, config: Optional[Dict[str, Any]] = None):
        if config is None and os.environ.get("CB_STORAGE"):
            self._store = objects.storage()
            self.config = objects._conf() or {}
        else:
            self.config = dict(config) if config else _config.storage()
            self._store = objects.open_store(self.config)
        self.bucket = _config.results_bucket(self.config)
        self.backend = "s3" if not isinstance(self._store, objects._FileStore) else "file"

    @staticmethod
    def _url(bucket: str, key: str) -> str:
        if not bucket or not key:
            raise ValueError("an object needs a bucket and a key")
        return "s3://%s/%s" % (bucket, key)

    def put_object(self, bucket: str, key: str, body) -> None:
        """Write an object whole (bytes, str or a file-like object)."""
        if isinstance(body, str):
            body = body.encode()
        elif hasattr(body, "read"):
            body = body.read()
        self._store.put(self._url(bucket, key), bytes(body))

    def get_object(self, bucket: str, key: str, stream: bool = False,
                   extra_get_args: Optional[Dict[str, Any]] = None):
        """The object's bytes (a file-like object with stream=True);
        extra_get_args may give {"Range": "bytes=START-END"} as Lithops does."""
        url = self._url(bucket, key)
        rng = (extra_get_args or {}).get("Range")
        if rng:
            spec = rng.split("=", 1)[1]
            start, _, end = spec.partition("-")
            data = self._store.read(url, int(start), int(end) + 1)
        else:
            data = self._store.read_all(url)
        return io.BytesIO(data) if stream else data

    def head_object(self, bucket: str, key: str) -> Dict[str, Any]:
        size = self._store.size(self._url(bucket, key))
        if size is None:
            raise FileNotFoundError("s3://%s/%s: no such object" % (bucket, key))
        return {"content-length": str(size)}

    def list_keys(self, bucket: str, prefix: Optional[str] = None) -> List[str]:
        return self._store.keys(bucket, prefix or "")

    def list_objects(self, bucket: str, prefix: Optional[str] = None) -> List[Dict[str, Any]]:
        return [{"Key": k, "Size": self._store.size(self._url(bucket, k))}
                for k in self.list_keys(bucket, prefix)]

    def delete_object(self, bucket: str, key: str) -> None:
        self._store.delete(self._url(bucket, key))

    def delete_objects(self, bucket: str, keys: List[str]) -> None:
        for key in keys:
            self.delete_object(bucket, key)

    def put_cloudobject(self, body: Any, bucket: Optional[str] = None,
                        key: Optional[str] = None) -> CloudObject:
        """Keep any picklable value; the CloudObject names it."""
        bucket = bucket or self.bucket
        key = key or "cloudobjects/%s" % uuid.uuid4().hex
        self.put_object(bucket, key, pickle.dumps(body))
        return CloudObject(self.backend, bucket, key)

    def get_cloudobject(self, cloudobject: CloudObject) -> Any:
        return pickle.loads(self.get_object(cloudobject.bucket, cloudobject.key))

    def put_content_addressed(self, data: bytes, prefix: str, suffix: str = "") -> Dict[str, Any]:
        """Store data once under PREFIX<sha256>SUFFIX in the results bucket;
        its reference {"$cb_ref", "size", "sha256"} and whether it was written."""
        digest = hashlib.sha256(data).hexdigest()
        url = self._url(self.bucket, prefix + digest + suffix)
        written = False
        if self._store.size(url) != len(data):
            self._store.put(url, data)
            written = True
        return {"$cb_ref": url, "size": len(data), "sha256": digest, "written": written}
