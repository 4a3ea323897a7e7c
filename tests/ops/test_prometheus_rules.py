"""The Prometheus files under ops/prometheus: both configs and the rule files pass
promtool, every alert is complete and unit-tested (`promtool test rules` on
alerts_test.yml), and the configs find what docker-compose.yml and ops/k8s run."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.ops.grafana import OPS, load_yaml
from tests.ops.prometheus_files import (
    PROMETHEUS,
    RULE_FILES,
    RULES,
    alerts,
    kubernetes_config_as_static,
    pod,
    records,
)

ROOT = OPS.parent

# What the issue asks to be alerted on, and the figures it names.
REQUIRED_ALERTS = {
    "SignerHighErrorRate",
    "SignerHighLatency",
    "SignerQuotaNearlyExhausted",
    "SignerSignatureFailures",
    "SignerNoWorkerAlive",
    "SignerQueueGrowing",
    "SignerBrowserRestarts",
}
REQUIRED_RECORDS = {
    "signer:requests:rate5m",
    "signer:errors:ratio_rate5m",
    "signer:latency:p95_5m",
    "signer:queue_depth",
}
SEVERITIES = {"critical", "warning"}
# level:metric[:operation], all lower case.
RECORD_NAME = re.compile(r"signer:[a-z0-9_]+(?::[a-z0-9_]+)?")


def run_promtool(promtool: str, *args: str | Path) -> str:
    done = subprocess.run(
        [promtool, *map(str, args)], capture_output=True, text=True, timeout=120, check=False
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"promtool {' '.join(map(str, args))} failed:\n{output}"
    return output


def test_rule_files_pass_promtool(promtool: str) -> None:
    output = run_promtool(promtool, "check", "rules", *RULE_FILES)
    assert output.count("SUCCESS") == len(RULE_FILES), output


def test_compose_config_passes_promtool(promtool: str) -> None:
    # Also loads the rule files it names, relative to itself as in the container.
    output = run_promtool(promtool, "check", "config", PROMETHEUS / "prometheus.yml")
    assert f"{len(RULE_FILES)} rule files found" in output, output


def test_kubernetes_config_passes_promtool(promtool: str, tmp_path: Path) -> None:
    config = kubernetes_config_as_static([pod("signer-api-0", "signer-api", 8080)])
    path = tmp_path / "prometheus-k8s.yml"
    path.write_text(yaml.safe_dump(config))
    output = run_promtool(promtool, "check", "config", path)
    assert f"{len(RULE_FILES)} rule files found" in output, output


def test_compose_config_discovers_every_replica_by_dns() -> None:
    compose = load_yaml(ROOT / "docker-compose.yml")["services"]
    jobs = {
        job["job_name"]: job for job in load_yaml(PROMETHEUS / "prometheus.yml")["scrape_configs"]
    }
    api_port = compose["api"]["environment"]["SIGNER_API_PORT"]
    worker_port = compose["worker"]["environment"]["SIGNER_WORKER_METRICS_PORT"]
    expected = {"signer-api": ("api", int(api_port)), "signer-worker": ("worker", int(worker_port))}
    for job_name, (service, port) in expected.items():
        job = jobs[job_name]
        assert "static_configs" not in job, f"{job_name}: fixed targets miss scaled replicas"
        assert job["dns_sd_configs"] == [
            {"names": [service], "type": "A", "port": port, "refresh_interval": "15s"}
        ], f"{job_name} must resolve compose service {service!r} on port {port}"
        assert "container_name" not in compose[service], f"{service} has a fixed container name"


def test_kubernetes_config_keeps_the_signer_pods_of_ops_k8s() -> None:
    job = next(
        job
        for job in load_yaml(PROMETHEUS / "prometheus-k8s.yml")["scrape_configs"]
        if "kubernetes_sd_configs" in job
    )
    keep = {
        tuple(step["source_labels"]): re.compile(step["regex"])
        for step in job["relabel_configs"]
        if step.get("action") == "keep"
    }
    name_rule = keep[("__meta_kubernetes_pod_label_app_kubernetes_io_name",)]
    port_rule = keep[("__meta_kubernetes_pod_annotation_prometheus_io_port",)]
    scraped = set()
    for path in sorted((OPS / "k8s").glob("*.yaml")):
        manifest = load_yaml(path)
        if manifest.get("kind") != "Deployment":
            continue
        template = manifest["spec"]["template"]
        app = template["metadata"]["labels"]["app.kubernetes.io/name"]
        if not name_rule.fullmatch(app):
            continue
        annotations = template["metadata"].get("annotations", {})
        port = annotations.get("prometheus.io/port", "")
        assert port_rule.fullmatch(port), f"{path.name}: no prometheus.io/port annotation"
        declared = {
            p["containerPort"] for c in template["spec"]["containers"] for p in c.get("ports", [])
        }
        assert int(port) in declared, f"{path.name}: annotated port {port} is not a containerPort"
        scraped.add(app)
    assert scraped == {"signer-api", "signer-worker"}, f"pods kept for scraping: {scraped}"


def test_alert_unit_tests_pass(promtool: str) -> None:
    output = run_promtool(promtool, "test", "rules", RULES / "alerts_test.yml")
    assert "SUCCESS" in output, output


def test_every_alert_has_a_unit_test_where_it_fires() -> None:
    tested = load_yaml(RULES / "alerts_test.yml")
    assert tested["rule_files"] == ["recording.yml", "alerts.yml"]
    fired = {
        case["alertname"]
        for test in tested["tests"]
        for case in test.get("alert_rule_test", [])
        if case.get("exp_alerts")
    }
    untested = {alert["alert"] for alert in alerts()} - fired
    assert not untested, f"alerts no test sees firing: {sorted(untested)}"


def test_alerts_are_complete() -> None:
    names = [alert["alert"] for alert in alerts()]
    assert len(names) == len(set(names)), "duplicate alert names"
    assert set(names) >= REQUIRED_ALERTS, f"missing: {sorted(REQUIRED_ALERTS - set(names))}"
    for alert in alerts():
        name = alert["alert"]
        assert alert["labels"]["severity"] in SEVERITIES, name
        annotations = alert["annotations"]
        for key in ("summary", "description", "runbook"):
            assert str(annotations.get(key, "")).strip(), f"{name}: no {key} annotation"


def test_the_quota_alert_reads_the_exported_ratio() -> None:
    quota = next(a for a in alerts() if a["alert"] == "SignerQuotaNearlyExhausted")
    assert quota["expr"] == "max by (tier) (signer_quota_use_ratio) > 0.8"


def test_recording_rules_are_named_and_unique() -> None:
    names = [rule["record"] for rule in records()]
    assert len(names) == len(set(names)), "duplicate recording rules"
    assert set(names) >= REQUIRED_RECORDS, f"missing: {sorted(REQUIRED_RECORDS - set(names))}"
    for name in names:
        assert RECORD_NAME.fullmatch(name), f"{name}: not signer:metric[:operation]"


@pytest.mark.parametrize("config", ["prometheus.yml", "prometheus-k8s.yml"])
def test_configs_load_exactly_the_rule_files(config: str) -> None:
    # Not a glob: rules/ also holds alerts_test.yml, which is no rule file.
    assert load_yaml(PROMETHEUS / config)["rule_files"] == [
        "rules/recording.yml",
        "rules/alerts.yml",
    ]
