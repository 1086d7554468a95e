"""A PEP 517 build backend for the cbcore package, in the tree and on the
standard library only, so that `pip install ./toolkit/python` works without
a package index (pip's isolated build needs nothing to download).

It builds a pure-Python wheel (cbcore/*.py and the metadata) and an sdist.
"""
import base64
import hashlib
import os
import tarfile
import zipfile

NAME = "cbcore"
HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _project():
    import tomllib  # Python 3.11; older Pythons: the fallback below
    with open(os.path.join(HERE, "pyproject.toml"), "rb") as f:
        return tomllib.load(f)["project"]


def _metadata():
    try:
        p = _project()
        version, summary, deps = p["version"], p["description"], p.get("dependencies", [])
        requires = p.get("requires-python", "")
    except ImportError:  # no tomllib: the package's own version
        version, summary, deps, requires = _own_version(), "cbcore toolkit", [], ""
    lines = ["Metadata-Version: 2.1", "Name: " + NAME, "Version: " + version,
             "Summary: " + summary]
    if requires:
        lines.append("Requires-Python: " + requires)
    lines += ["Requires-Dist: " + d for d in deps]
    with open(os.path.join(HERE, "README.md"), encoding="utf-8") as f:
        readme = f.read()
    lines.append("Description-Content-Type: text/markdown")
    return version, "\n".join(lines) + "\n\n" + readme


def _own_version():
    with open(os.path.join(HERE, NAME, "__init__.py"), encoding="utf-8") as f:
        for line in f:
            if line.startswith("__version__"):
                return line.split('"')[1]
    return "0"


def _files():
    pkg = os.path.join(HERE, NAME)
    for name in sorted(os.listdir(pkg)):
        if name.endswith(".py"):
            yield NAME + "/" + name, os.path.join(pkg, name)


def _record_line(arcname, data):
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return "%s,sha256=%s,%d" % (arcname, digest, len(data))


def get_requires_for_build_wheel(config_settings=None):
    return []


get_requires_for_build_sdist = get_requires_for_build_wheel
get_requires_for_build_editable = get_requires_for_build_wheel


def _wheel(wheel_directory, files):
    version, metadata = _metadata()
    dist = "%s-%s.dist-info" % (NAME, version)
    wheel_name = "%s-%s-py3-none-any.whl" % (NAME, version)
    records = []
    with zipfile.ZipFile(os.path.join(wheel_directory, wheel_name), "w",
                         zipfile.ZIP_DEFLATED) as z:
        for arcname, data in files + [
                (dist + "/METADATA", metadata.encode()),
                (dist + "/WHEEL", b"Wheel-Version: 1.0\nGenerator: cbcore_build\n"
                                  b"Root-Is-Purelib: true\nTag: py3-none-any\n")]:
            z.writestr(arcname, data)
            records.append(_record_line(arcname, data))
        records.append(dist + "/RECORD,,")
        z.writestr(dist + "/RECORD", "\n".join(records) + "\n")
    return wheel_name


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    files = []
    for arcname, path in _files():
        with open(path, "rb") as f:
            files.append((arcname, f.read()))
    return _wheel(wheel_directory, files)


def build_editable(wheel_directory, config_settings=None, metadata_directory=None):
    """An editable install: a .pth file naming the source tree."""
    return _wheel(wheel_directory, [("cbcore_editable.pth", (HERE + "\n").encode())])


def build_sdist(sdist_directory, config_settings=None):
    version, _ = _metadata()
    base = "%s-%s" % (NAME, version)
    name = base + ".tar.gz"
    with tarfile.open(os.path.join(sdist_directory, name), "w:gz") as t:
        for rel in ["pyproject.toml", "README.md", "_build/cbcore_build.py"] + [
                a for a, _ in _files()]:
            t.add(os.path.join(HERE, rel), arcname=base + "/" + rel)
    return name
