#!/usr/bin/env python3
"""Checks compose.yaml's structure without Docker (which cannot run everywhere
the tests run): the services, profiles, dependencies, files and volumes it
names, and that the Dockerfile's health check needs no curl. Prints each
service's command as JSON (for tests/deploy_files.rs, which runs them through
the binary's argument parser) and exits 1 naming every problem.

    python3 scripts/check-compose.py [compose.yaml]
"""

import json
import os
import sys

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
problems = []


def need(condition, message):
    if not condition:
        problems.append(message)


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "compose.yaml")
    with open(path, encoding="utf-8") as f:
        doc = yaml.safe_load(f)
    need(isinstance(doc, dict), "the file is not a mapping")
    services = doc.get("services") or {}
    volumes = doc.get("volumes") or {}
    need(
        set(services) == {"postgres", "bridge-demo", "migrate", "bridge"},
        f"services are {sorted(services)}",
    )
    known_keys = {
        "image", "build", "command", "environment", "env_file", "depends_on", "ports",
        "volumes", "healthcheck", "profiles", "restart", "stop_grace_period",
    }
    for name, svc in services.items():
        need(isinstance(svc, dict), f"{name}: not a mapping")
        for key in svc:
            need(key in known_keys, f"{name}: unexpected key {key!r}")
        need("image" in svc or "build" in svc, f"{name}: neither image nor build")
        if "build" in svc:
            need(
                os.path.isfile(os.path.join(ROOT, svc["build"], "Dockerfile")),
                f"{name}: build context {svc['build']!r} has no Dockerfile",
            )
        for dep, cond in (svc.get("depends_on") or {}).items():
            need(dep in services, f"{name}: depends on unknown service {dep!r}")
            need(
                cond.get("condition")
                in ("service_started", "service_healthy", "service_completed_successfully"),
                f"{name}: depends_on {dep}: condition {cond.get('condition')!r}",
            )
            if cond.get("condition") == "service_healthy":
                need("healthcheck" in services.get(dep, {}), f"{dep}: no healthcheck to wait for")
            # A default service must not wait for a profiled one.
            if not svc.get("profiles"):
                need(not services.get(dep, {}).get("profiles"), f"{name}: depends on profiled {dep}")
        for entry in svc.get("env_file") or []:
            p = entry["path"] if isinstance(entry, dict) else entry
            example = {
                "deploy/migrate.env": "deploy/lapor-bridge-migrate.env.example",
                "deploy/lapor-bridge.env": "deploy/lapor-bridge.env.example",
            }.get(p)
            need(example is not None, f"{name}: env_file {p!r} has no example")
            if example:
                need(os.path.isfile(os.path.join(ROOT, example)), f"{name}: {example} is missing")
        for mount in svc.get("volumes") or []:
            source = mount.split(":", 1)[0]
            if not source.startswith((".", "/")):
                need(source in volumes, f"{name}: named volume {source!r} is not declared")
        for port in svc.get("ports") or []:
            need(
                isinstance(port, str) and port.startswith("127.0.0.1:"),
                f"{name}: port {port!r} is not published on loopback only",
            )
        env = svc.get("environment") or {}
        need(isinstance(env, dict), f"{name}: environment is not a mapping")
        for key, value in env.items():
            need(isinstance(value, str), f"{name}: {key} is not a string")

    demo = services.get("bridge-demo", {})
    need(not demo.get("profiles"), "bridge-demo: must run without a profile")
    need(demo.get("command") == ["demo", "--listen", "0.0.0.0:8080"], "bridge-demo: command")
    need("postgres:5432" in (demo.get("environment") or {}).get("DATABASE_URL", ""),
         "bridge-demo: DATABASE_URL does not name the postgres service")
    for name in ("migrate", "bridge"):
        need(services.get(name, {}).get("profiles") == ["production"], f"{name}: profile")
    need(services.get("migrate", {}).get("command") == ["migrate"], "migrate: command")
    need(
        services.get("bridge", {}).get("depends_on", {}).get("migrate", {}).get("condition")
        == "service_completed_successfully",
        "bridge: must start after migrate succeeded",
    )
    need((services.get("bridge", {}).get("command") or [""])[0] == "run", "bridge: command")
    need(
        (services.get("bridge", {}).get("environment") or {}).get("BRIDGE_LISTEN") == "0.0.0.0:8080",
        "bridge: BRIDGE_LISTEN",
    )

    with open(os.path.join(ROOT, "Dockerfile"), encoding="utf-8") as f:
        dockerfile = f.read()
    need("curl" not in dockerfile, "Dockerfile: still mentions curl")
    need('CMD ["lapor-bridge", "healthcheck"]' in dockerfile, "Dockerfile: HEALTHCHECK")

    if problems:
        for p in problems:
            print(f"compose check: {p}", file=sys.stderr)
        sys.exit(1)
    print(json.dumps({name: svc.get("command") for name, svc in services.items()}))


if __name__ == "__main__":
    main()
