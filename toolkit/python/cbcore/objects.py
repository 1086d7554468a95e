"""Objects in cbcore's storage (docs/storage.md): what functions read, what the
toolkit writes.

The one implementation of the storage drivers in Python (the file driver,
S3 with boto3, http(s) URLs), shared by cbcore's Python runtime (which
imports it as cbcore_objects too) and by the toolkit's client side
(cbcore.storage.Storage, shipped code).

A map over objects gives each task an item
    {"url": "s3://bucket/key", "etag": "...", "size": N, "range": [start, end]}
(and "split": "lines"). The runtime hands the function an ObjectRange instead
of that dict: it reads only its range, from the storage the adapter names in
$CB_STORAGE (the "storage" object of the configuration, as JSON: the file
driver's directory, or an S3 endpoint read with boto3). An http(s):// URL is
read from its web server with Range requests (urllib; the storage's ca_file
and verify apply), its etag being the ETag header (else Last-Modified), as
the engine's planner (common/cb_storage_s3.c) takes it.

With split "lines" a range owns the lines that *start* inside it: it skips a
partial first line (unless it starts at 0) and reads past its end to the end
of the line that crosses it, so every line of the object is read by exactly
one task.

An object whose etag changed since the job was planned is an error, never a
silent mix of two versions.

get(url, cached=True) reads a whole object through the adapter's read cache
($CB_CACHE_DIR, bounded by $CB_CACHE_MAX_BYTES, default 1 GiB): one file per
(url, etag), shared by every runtime of the adapter, the least recently used
evicted first, so a thousand tasks that load the same model read it from
storage once. cache_stats() gives the hits and misses counted there.

Outputs too large for the log travel as references,
    {"$cb_ref": "s3://bucket/results/...", "size": N, "sha256": "..."}
(adapters/spill.h); resolve_refs() puts the value back wherever one is in a
function's input (a reduce's list of outputs, a DAG step's input), checking
its size and digest.
"""
import hashlib
import io
import json
import os
import ssl
import tempfile
import urllib.error
import urllib.request

_READ_STEP = 1 << 16
_FILE_TMP_PREFIX = ".cb-put-"  # the file driver's temp files (common/cb_storage_file.c)


class ObjectChanged(RuntimeError):
    """The object is not the version the job was planned on."""


def _is_web(url):
    return url.startswith("http://") or url.startswith("https://")


def is_object_item(item):
    return (isinstance(item, dict) and isinstance(item.get("url"), str)
            and (item["url"].startswith("s3://") or _is_web(item["url"]))
            and isinstance(item.get("range"), list) and "etag" in item and "size" in item)


def _split_url(url):
    rest = url[len("s3://"):]
    bucket, _, key = rest.partition("/")
    return bucket, key


class _FileStore:
    """The file driver: ROOT/BUCKET/KEY; the etag as common/cb_storage_file.c makes it."""

    def __init__(self, root):
        self.root = root

    def _path(self, url):
        return os.path.join(self.root, *_split_url(url))

    def etag(self, url):
        st = os.stat(self._path(url))
        text = "%d:%d.%09d:%d" % (st.st_size, st.st_mtime_ns // 1000000000,
                                  st.st_mtime_ns % 1000000000, st.st_ino)
        return hashlib.sha256(text.encode()).hexdigest()[:32]

    def read(self, url, start, end):
        with open(self._path(url), "rb") as f:
            f.seek(start)
            return f.read(max(0, end - start))

    def read_all(self, url):
        with open(self._path(url), "rb") as f:
            return f.read()

    def size(self, url):
        """The object's size, or None when there is none."""
        try:
            return os.stat(self._path(url)).st_size
        except FileNotFoundError:
            return None

    def put(self, url, data):
        """Write the object whole: a temp file beside it, renamed into place
        (the prefix the C driver's listing skips), as common/cb_storage_file.c."""
        path = self._path(url)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=_FILE_TMP_PREFIX)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise

    def delete(self, url):
        try:
            os.unlink(self._path(url))
        except FileNotFoundError:
            pass

    def keys(self, bucket, prefix=""):
        """The keys under prefix, in key order."""
        top = os.path.join(self.root, bucket)
        out = []
        for d, dirs, files in os.walk(top):
            rel = os.path.relpath(d, top)
            for name in files:
                if name.startswith(_FILE_TMP_PREFIX):
                    continue
                key = name if rel == "." else rel + "/" + name
                if key.startswith(prefix):
                    out.append(key)
        return sorted(out)


class _S3Store:
    """Any S3-compatible endpoint, with boto3 (Debian's python3-boto3)."""

    def __init__(self, conf):
        import boto3  # only the s3 driver needs it
        from botocore.config import Config
        endpoint = conf.get("endpoint")
        addressing = conf.get("addressing") or ("path" if endpoint else "virtual")
        self.client = boto3.client(
            "s3", endpoint_url=endpoint,
            region_name=conf.get("region") or os.environ.get("AWS_REGION") or "us-east-1",
            aws_access_key_id=conf.get("access_key_id") or None,
            aws_secret_access_key=conf.get("secret_access_key") or None,
            aws_session_token=conf.get("session_token") or None,
            verify=conf.get("ca_file") or conf.get("verify", True),
            config=Config(s3={"addressing_style": addressing}))

    def etag(self, url):
        bucket, key = _split_url(url)
        return self.client.head_object(Bucket=bucket, Key=key)["ETag"].strip('"')

    def read(self, url, start, end):
        if end <= start:
            return b""
        bucket, key = _split_url(url)
        r = self.client.get_object(Bucket=bucket, Key=key, Range="bytes=%d-%d" % (start, end - 1))
        return r["Body"].read()

    def read_all(self, url):
        bucket, key = _split_url(url)
        return self.client.get_object(Bucket=bucket, Key=key)["Body"].read()

    def size(self, url):
        bucket, key = _split_url(url)
        try:
            return int(self.client.head_object(Bucket=bucket, Key=key)["ContentLength"])
        except self.client.exceptions.ClientError as e:
            if e.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise

    def put(self, url, data):
        bucket, key = _split_url(url)
        self.client.put_object(Bucket=bucket, Key=key, Body=data)

    def delete(self, url):
        bucket, key = _split_url(url)
        self.client.delete_object(Bucket=bucket, Key=key)

    def keys(self, bucket, prefix=""):
        out = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket,
                                                                          Prefix=prefix):
            out.extend(o["Key"] for o in page.get("Contents", []))
        return out


class _WebStore:
    """http(s) URLs of any web server: HEAD for the etag, GET with Range."""

    def __init__(self, conf):
        self.context = None
        if conf.get("verify") is False:
            self.context = ssl._create_unverified_context()
        elif conf.get("ca_file"):
            self.context = ssl.create_default_context(cafile=conf["ca_file"])
        self.timeout = (conf.get("timeout_ms") or 300000) / 1000.0

    def _open(self, url, method="GET", headers=None):
        rq = urllib.request.Request(url, method=method, headers=headers or {})
        try:
            return urllib.request.urlopen(rq, timeout=self.timeout, context=self.context)
        except urllib.error.HTTPError as e:
            if e.code == 416:
                return e
            raise RuntimeError("%s: HTTP %d" % (url, e.code)) from None

    def etag(self, url):
        with self._open(url, "HEAD") as r:
            tag = r.headers.get("ETag") or r.headers.get("Last-Modified") or ""
        if tag.startswith("W/"):  # a weak one: the same bytes as far as we can tell
            tag = tag[2:]
        return tag[1:].split('"')[0] if tag.startswith('"') else tag.split('"')[0]

    def read(self, url, start, end):
        if end <= start:
            return b""
        with self._open(url, headers={"Range": "bytes=%d-%d" % (start, end - 1)}) as r:
            if r.status == 416:
                return b""
            if r.status == 200 and start > 0:
                raise RuntimeError("%s: the server answered a ranged get with the whole object"
                                   % url)
            return r.read(end - start)

    def read_all(self, url):
        with self._open(url) as r:
            return r.read()


_store = None
_web = None


def _conf():
    text = os.environ.get("CB_STORAGE")
    return json.loads(text) if text else None


def open_store(conf):
    """A driver for a "storage" object of the configuration (docs/storage.md):
    the file driver at conf["root"], else S3 (boto3)."""
    if conf.get("driver", "s3" if conf.get("endpoint") else "file") == "file":
        if not conf.get("root"):
            raise RuntimeError("the storage names the file driver without its root")
        return _FileStore(conf["root"])
    return _S3Store(conf)


def storage(url=None):
    """The storage that serves url: its web server for an http(s) URL, else
    the storage the adapter configured ($CB_STORAGE); each made once."""
    global _store, _web
    if url is not None and _is_web(url):
        if _web is None:
            _web = _WebStore(_conf() or {})
        return _web
    if _store is None:
        conf = _conf()
        if not conf:
            raise RuntimeError("no object storage is configured for this adapter "
                               "($CB_STORAGE is not set: give cb-adapter --objects DIR or a "
                               "\"storage\" object in the configuration)")
        _store = open_store(conf)
    return _store


def split_url(url):
    """("bucket", "key") of s3://bucket/key."""
    if not url.startswith("s3://"):
        raise ValueError("%s is not an s3:// URL" % url)
    return _split_url(url)


# ---- the read cache -------------------------------------------------------------


def _cache_dir():
    d = os.environ.get("CB_CACHE_DIR")
    if d:
        os.makedirs(d, exist_ok=True)
    return d


def _count(d, what):
    """One hit or miss: an append of one byte is atomic between processes."""
    fd = os.open(os.path.join(d, "stats." + what), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.write(fd, b".")
    finally:
        os.close(fd)


def cache_stats():
    """{"hits": N, "misses": N} of the adapter's read cache (0s without one)."""
    d = _cache_dir()
    out = {"hits": 0, "misses": 0}
    for what, key in (("hit", "hits"), ("miss", "misses")):
        try:
            out[key] = os.path.getsize(os.path.join(d, "stats." + what)) if d else 0
        except OSError:
            pass
    return out


def _evict(d, keep):
    limit = int(os.environ.get("CB_CACHE_MAX_BYTES", str(1 << 30)))
    entries = []
    for name in os.listdir(d):
        if name.startswith("obj-"):
            try:
                st = os.stat(os.path.join(d, name))
                entries.append((st.st_atime, st.st_size, name))
            except OSError:
                pass
    total = sum(e[1] for e in entries)
    for _, size, name in sorted(entries):  # the least recently used first
        if total <= limit:
            break
        if name == keep:
            continue
        try:
            os.unlink(os.path.join(d, name))
            total -= size
        except OSError:
            pass


def get(url, cached=True):
    """The whole object at url (bytes). cached: through the adapter's read
    cache, by url and the object's current etag (a changed object is read
    again)."""
    store = storage(url)
    etag = store.etag(url)
    d = _cache_dir() if cached else None
    if not d:
        return store.read_all(url)
    name = "obj-" + hashlib.sha256((url + "\0" + etag).encode()).hexdigest()
    path = os.path.join(d, name)
    try:
        with open(path, "rb") as f:
            data = f.read()
        os.utime(path)  # recently used
        _count(d, "hit")
        return data
    except FileNotFoundError:
        pass
    data = store.read_all(url)
    _count(d, "miss")
    fd, tmp = tempfile.mkstemp(dir=d, prefix=".tmp-")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)  # whole or absent, for every runtime
    _evict(d, name)
    return data


def is_ref(value):
    return (isinstance(value, dict) and isinstance(value.get("$cb_ref"), str)
            and set(value) <= {"$cb_ref", "size", "sha256"})


def fetch_bytes(ref, store=None):
    """The bytes a reference stands for, checked against its size and sha256
    (store: the driver to read with; default the adapter's)."""
    url = ref["$cb_ref"]
    size = int(ref.get("size", 0))
    data = (store or storage(url)).read(url, 0, size)
    if len(data) != size:
        raise RuntimeError("%s: %d bytes, the reference says %d" % (url, len(data), size))
    digest = hashlib.sha256(data).hexdigest()
    if ref.get("sha256") and digest != ref["sha256"]:
        raise RuntimeError("%s: sha256 %s, the reference says %s" % (url, digest, ref["sha256"]))
    return data


def fetch_ref(ref, store=None):
    """The value a reference stands for."""
    return json.loads(fetch_bytes(ref, store))


def resolve_refs(value, store=None):
    """value with every reference replaced by what it stands for."""
    if is_ref(value):
        return fetch_ref(value, store)
    if isinstance(value, list):
        return [resolve_refs(v, store) for v in value]
    if isinstance(value, dict):
        return {k: resolve_refs(v, store) for k, v in value.items()}
    return value


class ObjectRange:
    """The part of one object a task reads: .url .bucket .key .etag .size
    .range (start, end) .data_range (what is read: line-aligned with split
    "lines"), .read(), .data_stream (a file-like object), .lines().
    As Lithops' object handle: .chunk_size (bytes of the range),
    .data_byte_range (first, last byte, inclusive), .part (the range's
    index within its object, when the planner gives it)."""

    def __init__(self, item):
        self.url = item["url"]
        if _is_web(self.url):  # the host as the "bucket", the path as the key
            self.bucket, _, self.key = self.url.split("://", 1)[1].partition("/")
        else:
            self.bucket, self.key = _split_url(self.url)
        self.etag = item["etag"]
        self.size = int(item["size"])
        self.range = (int(item["range"][0]), int(item["range"][1]))
        self.split = item.get("split", "bytes")
        self.part = item.get("part")
        self.chunk_size = self.range[1] - self.range[0]
        self.data_byte_range = (self.range[0], self.range[1] - 1)
        self._data = None
        self.data_range = None

    def _check_version(self, store):
        now = store.etag(self.url)
        if self.etag and now != self.etag:
            raise ObjectChanged("%s changed since the job was planned (etag %s, now %s)"
                                % (self.url, self.etag, now))

    def _first_newline(self, store, at):
        """The position of the first b"\\n" at or after `at`, or self.size."""
        pos = at
        while pos < self.size:
            block = store.read(self.url, pos, min(pos + _READ_STEP, self.size))
            if not block:
                break
            i = block.find(b"\n")
            if i >= 0:
                return pos + i
            pos += len(block)
        return self.size

    def read(self):
        """The bytes of the range (line-aligned with split "lines")."""
        if self._data is not None:
            return self._data
        store = storage(self.url)
        self._check_version(store)
        start, end = self.range
        if self.split == "lines" and end > start:
            if start > 0:  # a line starting before us is the previous range's
                start = self._first_newline(store, start - 1) + 1
            if start >= end:  # no line starts in the range
                start = end = self.range[1]
            else:  # the line that crosses the end is ours
                end = min(self._first_newline(store, end - 1) + 1, self.size)
        self.data_range = (start, end)
        self._data = store.read(self.url, start, end)
        if len(self._data) != end - start:
            raise ObjectChanged("%s: read %d bytes of [%d, %d): the object changed"
                                % (self.url, len(self._data), start, end))
        return self._data

    @property
    def data_stream(self):
        return io.BytesIO(self.read())

    def lines(self):
        return self.read().splitlines()

    def __repr__(self):
        return "ObjectRange(%s [%d, %d))" % (self.url, self.range[0], self.range[1])
