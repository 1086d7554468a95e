"""Where the toolkit finds a cbcore deployment, as the `cb` CLI does.

    api       the cb-api URL: the argument, config["api"], $CB_API_URL, else
              the file DIR/api_url that `cb up` writes (DIR: $CB_DIR, else
              ./.cb)
    token     config["token"], else $CB_API_TOKEN, else the first line of
              the file $CB_API_TOKEN_FILE names (`cb tenant add` prints it),
              else (inside a shipped function on a `cb up` stack) the job's
              tenant's DIR/identities/TENANT.token when there is one (none:
              an open API)
    tenant    config["tenant"], else (inside a shipped function) the tenant
              of the job that runs it, else $CB_TENANT, else "default"
    storage   config["storage"] (a "storage" object, docs/storage.md), else
              (inside a function) the adapter's $CB_STORAGE, else the
              "storage" of the configuration file $CB_CONFIG, else the file
              driver at DIR/objects (what `cb up` gives its daemons)

A Lithops-style config dict is accepted: its "cbcore" section, when there
is one, is read; other sections are ignored.
"""
import contextvars
import json
import os
from typing import Any, Dict, Optional

# Set while a shipped function runs (cbcore.invoke): the job's tenant, so
# that the jobs a function runs itself belong to the same tenant.
current_tenant: contextvars.ContextVar = contextvars.ContextVar("cbcore_tenant", default=None)


class ConfigError(RuntimeError):
    """The toolkit cannot find or read the deployment's settings."""


def cb_dir() -> str:
    return os.environ.get("CB_DIR") or ".cb"


def _section(config: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    if not config:
        return {}
    if not isinstance(config, dict):
        raise ConfigError("config must be a dict, not %s" % type(config).__name__)
    return dict(config.get("cbcore") or config)


def api_url(given: Optional[str], config: Optional[Dict[str, Any]] = None) -> str:
    url = given or _section(config).get("api") or os.environ.get("CB_API_URL")
    if url:
        return url.rstrip("/")
    path = os.path.join(cb_dir(), "api_url")
    try:
        with open(path) as f:
            url = f.read().strip()
    except OSError:
        url = ""
    if not url:
        raise ConfigError("no cb-api to talk to: give FunctionExecutor(api=URL), set "
                          "$CB_API_URL, or start a stack with `cb up` (it writes %s)" % path)
    return url.rstrip("/")


def _first_line(path: str) -> Optional[str]:
    try:
        with open(path) as f:
            return f.readline().strip() or None
    except OSError:
        return None


def token(config: Optional[Dict[str, Any]] = None) -> Optional[str]:
    given = _section(config).get("token") or os.environ.get("CB_API_TOKEN")
    if given:
        return given
    if os.environ.get("CB_API_TOKEN_FILE"):
        found = _first_line(os.environ["CB_API_TOKEN_FILE"])
        if not found:
            raise ConfigError("$CB_API_TOKEN_FILE: cannot read a token from %s"
                              % os.environ["CB_API_TOKEN_FILE"])
        return found
    inside = current_tenant.get()
    if inside and os.environ.get("CB_DIR"):
        return _first_line(os.path.join(os.environ["CB_DIR"], "identities", inside + ".token"))
    return None


def tenant(config: Optional[Dict[str, Any]] = None) -> str:
    return (_section(config).get("tenant") or current_tenant.get()
            or os.environ.get("CB_TENANT") or "default")


def storage(config: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """The "storage" object the client writes shipped code and data with."""
    conf = _section(config).get("storage")
    if conf:
        return dict(conf)
    if os.environ.get("CB_STORAGE"):  # inside a function: the adapter's
        try:
            return dict(json.loads(os.environ["CB_STORAGE"]))
        except ValueError as e:
            raise ConfigError("$CB_STORAGE: %s" % e) from None
    path = os.environ.get("CB_CONFIG")
    if path:
        try:
            with open(path) as f:
                conf = json.load(f).get("storage")
        except (OSError, ValueError) as e:
            raise ConfigError("%s: %s" % (path, e)) from None
        if conf:
            return dict(conf)
    return {"driver": "file", "root": os.path.abspath(os.path.join(cb_dir(), "objects"))}


def results_bucket(conf: Dict[str, Any]) -> str:
    return conf.get("results_bucket") or "cbcore"
