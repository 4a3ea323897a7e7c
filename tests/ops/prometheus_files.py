"""The Prometheus files under ops/prometheus, read, and turned into configs a local
Prometheus can run (static targets standing for what discovery finds in production)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.ops.grafana import OPS, load_yaml

__all__ = [
    "PROMETHEUS",
    "RULES",
    "RULE_FILES",
    "alerts",
    "compose_config_as_static",
    "kubernetes_config_as_static",
    "pod",
    "records",
]

PROMETHEUS = OPS / "prometheus"
RULES = PROMETHEUS / "rules"
RULE_FILES = [RULES / "recording.yml", RULES / "alerts.yml"]


def _rules(path: Path) -> list[dict[str, Any]]:
    return [rule for group in load_yaml(path)["groups"] for rule in group["rules"]]


def alerts() -> list[dict[str, Any]]:
    return _rules(RULES / "alerts.yml")


def records() -> list[dict[str, Any]]:
    return _rules(RULES / "recording.yml")


def _absolute_rule_files(config: dict[str, Any]) -> None:
    config["rule_files"] = [str(PROMETHEUS / name) for name in config["rule_files"]]


def compose_config_as_static(targets: dict[str, str], interval: str) -> dict[str, Any]:
    """prometheus.yml with each job's DNS discovery replaced by the one address given for
    it in `targets` (by job name), scrapes and rule evaluations every `interval`."""
    config = load_yaml(PROMETHEUS / "prometheus.yml")
    _absolute_rule_files(config)
    config["global"].update(
        scrape_interval=interval, scrape_timeout=interval, evaluation_interval=interval
    )
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    assert set(jobs) == set(targets), f"jobs of prometheus.yml: {sorted(jobs)}"
    for name, job in jobs.items():
        job.pop("dns_sd_configs", None)
        job["static_configs"] = [{"targets": [targets[name]]}]
    return config


def kubernetes_config_as_static(
    pods: list[dict[str, Any]], interval: str = "15s", prometheus: str = "localhost:9090"
) -> dict[str, Any]:
    """prometheus-k8s.yml with its pod discovery replaced by static target groups carrying
    the same `__meta_kubernetes_*` labels (`pod()`): Debian builds Prometheus without
    Kubernetes discovery, and the relabelling is what needs testing."""
    config = load_yaml(PROMETHEUS / "prometheus-k8s.yml")
    _absolute_rule_files(config)
    config["global"].update(
        scrape_interval=interval, scrape_timeout=interval, evaluation_interval=interval
    )
    for job in config["scrape_configs"]:
        if "kubernetes_sd_configs" in job:
            assert job.pop("kubernetes_sd_configs") == [{"role": "pod"}]
            job["static_configs"] = pods
        elif job["job_name"] == "prometheus":
            job["static_configs"] = [{"targets": [prometheus]}]
    return config


def pod(
    name: str, app: str, port: int | None, *, phase: str = "Running", declared: int = 80
) -> dict[str, Any]:
    """A static target group standing for one pod as Kubernetes discovery describes it:
    its address is the pod IP and a declared container port (`declared`), its labels
    the pod's name, phase, `app.kubernetes.io/name` and `prometheus.io/port` annotation."""
    labels = {
        "__meta_kubernetes_namespace": "signer",
        "__meta_kubernetes_pod_name": name,
        "__meta_kubernetes_pod_ip": "127.0.0.1",
        "__meta_kubernetes_pod_phase": phase,
        "__meta_kubernetes_pod_label_app_kubernetes_io_name": app,
    }
    if port is not None:
        labels["__meta_kubernetes_pod_annotation_prometheus_io_port"] = str(port)
        labels["__meta_kubernetes_pod_annotation_prometheus_io_path"] = "/metrics"
    return {"targets": [f"127.0.0.1:{declared}"], "labels": labels}
