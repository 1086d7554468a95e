"""docker-compose.yml parses and has what the README promises. Run by `make
test` on every machine; tools/compose-test.sh (`make compose-test`) builds
and runs the stack for real with podman."""
import sys

import yaml

with open(sys.argv[1]) as f:
    doc = yaml.safe_load(f)
services = doc["services"]
for name in ("nats", "rabbitmq", "projector", "engine", "adapter", "sla", "api"):
    assert name in services, f"service {name} missing"
    assert "healthcheck" in services[name], f"{name} has no health check"
    assert services[name].get("restart") == "unless-stopped", f"{name}: restart policy"
assert services["nats"]["build"]["target"] == "nats", "nats is not built from the Dockerfile"
assert services["rabbitmq"]["profiles"] == ["rabbitmq"], "RabbitMQ is not a profile"
assert "profiles" not in services["nats"], "NATS is the default broker"
for name in ("projector", "engine", "adapter", "sla", "api"):
    s = services[name]
    cmd = s["command"]
    assert cmd[0] == f"cb-{name}", cmd
    assert "--broker" in cmd, f"{name} has no --broker"
    assert s["build"]["target"] == "cbcore", name
for name in ("engine", "adapter", "projector", "sla"):
    assert "/opt/cbcore/examples/cb.json" in services[name]["command"], name
for name in ("projector", "engine", "api"):  # the store's users: one pid namespace (LMDB)
    assert "cb-store:/var/lib/cbcore" in services[name]["volumes"], name
    assert services[name]["pid"] == "host", name
assert "nats-data:/data" in services["nats"]["volumes"]
assert {"nats-data", "cb-store", "rabbitmq-data"} <= set(doc["volumes"]), doc["volumes"]
print("docker-compose.yml: services", ", ".join(services))
