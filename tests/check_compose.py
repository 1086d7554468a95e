"""docker-compose.yml parses and names what the README promises (no Docker
engine runs on this project's machines, so `docker compose config` cannot)."""
import sys

import yaml

with open(sys.argv[1]) as f:
    doc = yaml.safe_load(f)
services = doc["services"]
for name in ("nats", "rabbitmq", "projector", "engine", "adapter"):
    assert name in services, f"service {name} missing"
assert "-js" in services["nats"]["command"], "nats without JetStream"
for name in ("projector", "engine", "adapter"):
    cmd = services[name]["command"]
    assert cmd[0] == f"cb-{name}", cmd
    assert "--broker" in cmd, f"{name} has no --broker"
for name in ("engine", "adapter"):
    assert "/opt/cbcore/examples/cb.json" in services[name]["command"], name
print("docker-compose.yml: services", ", ".join(services))
