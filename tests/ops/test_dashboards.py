"""The Grafana dashboards and provisioning under ops/grafana.

Held to: Grafana's dashboard shape (fixed uids, unique panel ids, a grid that fits),
data sources that are provisioned, PromQL that parses (promtool) and selects only metrics
the running API and worker really export (or that recording.yml defines), the same for
the rules, and Postgres panels whose SQL runs on a migrated database with rows in it.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import yaml

from accounts.runtime import QUOTA_TODAY_SQL, quota_use_by_tier
from accounts.settings import RateLimitSettings
from migrations import apply_migrations
from tests.ops.grafana import (
    OPS,
    PROVISIONING,
    Query,
    concrete_promql,
    concrete_sql,
    datasources,
    load_dashboards,
    load_yaml,
    panels,
    queries,
    variable_queries,
)
from tests.ops.live import LiveStack, scrape, send_traffic
from tests.ops.metric_names import (
    TARGET_LABELS,
    catalog_metrics,
    exported_metrics,
    label_matchers,
    metric_names,
)
from tests.ops.prometheus_files import alerts, records
from tests.postgres_server import PostgresServer

DASHBOARD_UIDS = {
    "overview.json": "signer-overview",
    "workers.json": "signer-workers",
    "usage.json": "signer-usage",
}
DATASOURCE_TYPES = {
    "signer-prometheus": "prometheus",
    "signer-postgres": "grafana-postgresql-datasource",
}
PROMETHEUS_UID, POSTGRES_UID = "signer-prometheus", "signer-postgres"
GRID_WIDTH = 24
# Series every scraped target has, made by Prometheus itself.
PROMETHEUS_SERIES = {"up": {"job", "instance"}}
# What the overview must show (issue 5): requests, errors, latency histogram, queue
# depth ready/total, workers alive, contexts free/total, rate-limited requests.
OVERVIEW_METRICS = {
    "signer_api_requests_total",
    "signer_api_request_duration_seconds_bucket",
    "signer_queue_ready_jobs",
    "signer_queue_jobs",
    "signer_workers_alive",
    "signer_worker_contexts_free",
    "signer_worker_contexts_total",
    "signer_api_rate_limited_total",
    # Issue 11: connects by strategy and outcome, TikTok requests by endpoint and status,
    # their latency, retries, the breaker and the room-look-up caches.
    "signer_connects_total",
    "signer_connect_upstream_duration_seconds_bucket",
    "signer_tiktok_requests_total",
    "signer_tiktok_request_duration_seconds_sum",
    "signer_tiktok_request_duration_seconds_count",
    "signer_tiktok_retries_total",
    "signer_tiktok_breaker_state",
    "signer_tiktok_room_cache_hits_total",
    "signer_tiktok_room_cache_misses_total",
}
_LABEL_VALUES = re.compile(r"label_values\((?:(.+),)?\s*\w+\s*\)")


def dashboard_queries() -> list[tuple[dict[str, Any], Query]]:
    found = []
    for file, dashboard in load_dashboards().items():
        for query in [*queries(file, dashboard), *variable_queries(file, dashboard)]:
            found.append((dashboard, query))
    return found


def prometheus_queries() -> list[tuple[dict[str, Any], Query]]:
    return [(d, q) for d, q in dashboard_queries() if q.datasource.get("uid") == PROMETHEUS_UID]


def postgres_queries() -> list[tuple[dict[str, Any], Query]]:
    return [(d, q) for d, q in dashboard_queries() if q.datasource.get("uid") == POSTGRES_UID]


def promql(dashboard: dict[str, Any], query: Query) -> str:
    """A Prometheus query of a dashboard as PromQL: variables resolved, and of a
    variable's `label_values(selector, label)`, the selector."""
    expr = concrete_promql(query, dashboard)
    values = _LABEL_VALUES.fullmatch(expr.strip())
    return values.group(1) or "up" if values is not None else expr


def every_promql() -> list[tuple[str, str]]:
    """(where, expression) of every dashboard query and every rule."""
    found = [(q.where, promql(d, q)) for d, q in prometheus_queries()]
    found += [(f"recording.yml: {r['record']}", r["expr"]) for r in records()]
    found += [(f"alerts.yml: {a['alert']}", a["expr"]) for a in alerts()]
    return found


# Dashboard shape.


def test_the_dashboards_are_there_with_fixed_uids() -> None:
    found = {file: dashboard["uid"] for file, dashboard in load_dashboards().items()}
    assert found == DASHBOARD_UIDS


@pytest.mark.parametrize("file", sorted(DASHBOARD_UIDS))
def test_dashboard_is_grafana_json(file: str) -> None:
    dashboard = load_dashboards()[file]
    assert dashboard["id"] is None, "provisioned dashboards carry no database id"
    assert 36 <= dashboard["schemaVersion"] <= 41
    assert dashboard["title"].startswith("Signer / ")
    assert "signer" in dashboard["tags"]
    assert {"from", "to"} <= set(dashboard["time"])
    assert isinstance(dashboard["templating"]["list"], list)
    ids = [panel["id"] for panel in panels(dashboard)]
    assert len(ids) == len(set(ids)), f"{file}: duplicate panel ids"
    assert all(isinstance(i, int) for i in ids)
    cells: dict[tuple[int, int], str] = {}
    for panel in panels(dashboard):
        assert panel["title"], f"{file}: panel {panel['id']} untitled"
        grid = panel["gridPos"]
        assert {"h", "w", "x", "y"} <= set(grid), f"{file}: panel {panel['id']} gridPos"
        assert min(grid["w"], grid["h"]) > 0, f"{file}: panel {panel['id']} is empty"
        assert min(grid["x"], grid["y"]) >= 0, f"{file}: panel {panel['id']} off the grid"
        assert grid["x"] + grid["w"] <= GRID_WIDTH, f"{file}: panel {panel['id']} too wide"
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                other = cells.setdefault((x, y), panel["title"])
                assert other == panel["title"], f"{file}: {panel['title']!r} overlaps {other!r}"
        if panel["type"] != "row":
            assert panel.get("targets"), f"{file}: panel {panel['title']!r} has no query"


def test_every_panel_uses_a_provisioned_data_source() -> None:
    provisioned = datasources()
    assert {uid: source["type"] for uid, source in provisioned.items()} == DATASOURCE_TYPES
    for file, dashboard in load_dashboards().items():
        for panel in panels(dashboard):
            if panel["type"] == "row":
                continue
            source = panel["datasource"]
            where = f"{file}: panel {panel['title']!r}"
            assert source.get("uid") in provisioned, f"{where}: data source {source}"
            assert source["type"] == provisioned[source["uid"]]["type"], where
            for target in panel["targets"]:
                assert target.get("datasource", source) == source, f"{where}: mixed sources"
                if source["uid"] == PROMETHEUS_UID:
                    assert target["expr"].strip(), where
                else:
                    assert target["rawQuery"], where
                    assert target["rawSql"].strip(), where
                    assert target["format"] in {"table", "time_series"}, where
        for query in variable_queries(file, dashboard):
            assert query.datasource.get("uid") in provisioned, query.where


def test_the_dashboards_provider_reads_the_files_compose_mounts() -> None:
    (provider,) = load_yaml(PROVISIONING / "dashboards" / "signer.yml")["providers"]
    assert provider["type"] == "file"
    path = provider["options"]["path"]
    grafana = load_yaml(OPS.parent / "docker-compose.yml")["services"]["grafana"]
    mounts = {volume.split(":")[1]: volume.split(":")[0] for volume in grafana["volumes"]}
    assert mounts.get(path) == "./ops/grafana/dashboards", (
        f"nothing mounts the dashboards at {path}"
    )
    assert mounts.get("/etc/grafana/provisioning") == "./ops/grafana/provisioning"


def test_the_postgres_data_source_settings_are_given_to_grafana() -> None:
    # The values (not the comments) of the data sources that name environment variables.
    text = yaml.safe_dump(load_yaml(PROVISIONING / "datasources" / "signer.yml"))
    needed = set(re.findall(r"\$\{?([A-Z][A-Z0-9_]*)", text))
    assert needed, "the Postgres data source takes its settings from the environment"
    grafana = load_yaml(OPS.parent / "docker-compose.yml")["services"]["grafana"]
    missing = needed - set(grafana["environment"])
    assert not missing, f"docker-compose.yml does not give Grafana {sorted(missing)}"


# PromQL: syntax and metric names.


def test_metric_names_are_read_from_promql() -> None:
    expr = (
        'histogram_quantile(0.95, sum by (le) (rate(a_bucket{route=~"x|y"}[5m])))\n'
        "/ ignoring (error_type) group_left sum without (instance) (b_total offset 1h)\n"
        'or vector(0) and on () absent(up{job="j"} == 1) unless c:rec:rate5m > bool 2e3'
    )
    assert metric_names(expr) == {"a_bucket", "b_total", "up", "c:rec:rate5m"}
    assert label_matchers(expr) == {"a_bucket": {"route"}, "up": {"job"}}


def test_every_query_parses(promtool: str, tmp_path: Path) -> None:
    # Each expression as a recording rule in a group named after where it comes from,
    # so that promtool's message points at the panel.
    groups = [
        {"name": where, "rules": [{"record": "dashboard:query", "expr": expr}]}
        for where, expr in every_promql()
    ]
    path = tmp_path / "queries.yml"
    path.write_text(yaml.safe_dump({"groups": groups}))
    done = subprocess.run(
        [promtool, "check", "rules", str(path)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.fixture(scope="module")
def exported(live_stack: LiveStack) -> dict[str, set[str]]:
    """Every series name the live API and worker export, with their label names."""
    send_traffic(live_stack.stack, 3)
    deadline = time.monotonic() + 20
    while True:
        api = scrape(live_stack.api_address)
        # Set once the schema is migrated, a moment after the API starts.
        if "signer_quota_use_ratio" in api or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    names = exported_metrics(api)
    for name, labels in exported_metrics(scrape(live_stack.worker_address)).items():
        names.setdefault(name, set()).update(labels)
    return names


def test_queries_select_only_exported_metrics(exported: dict[str, set[str]]) -> None:
    recorded = {rule["record"] for rule in records()}
    known = set(exported) | recorded | set(PROMETHEUS_SERIES)
    used: dict[str, set[str]] = {}
    for where, expr in every_promql():
        for name in metric_names(expr):
            used.setdefault(name, set()).add(where)
    unknown = [
        f"{where} selects {name}, which neither the API nor the worker exports"
        for name in sorted(set(used) - known)
        for where in sorted(used[name])
    ]
    assert not unknown, "\n".join(unknown)


def test_queries_match_only_labels_the_metrics_have(exported: dict[str, set[str]]) -> None:
    # Labels from the live series, and from the catalog for series not produced yet.
    labels = {**PROMETHEUS_SERIES}
    for source in (catalog_metrics((OPS / "METRICS.md").read_text()), exported):
        for name, names in source.items():
            labels.setdefault(name, set()).update(names)
    recorded = {rule["record"] for rule in records()}
    wrong = []
    for where, expr in every_promql():
        for name, matched in label_matchers(expr).items():
            if name in recorded or name not in labels:
                continue  # the names test reports unknown metrics
            for label in sorted(matched - labels[name] - TARGET_LABELS):
                wrong.append(f"{where}: {name} has no label {label!r}")
    assert not wrong, "\n".join(wrong)


def test_the_dashboards_show_what_the_issue_asks() -> None:
    shown: dict[str, set[str]] = {}
    for file, dashboard in load_dashboards().items():
        for query in queries(file, dashboard):
            if query.datasource.get("uid") == PROMETHEUS_UID:
                expr = concrete_promql(query, dashboard)
                shown.setdefault(file, set()).update(metric_names(expr))
    assert shown["overview.json"] >= OVERVIEW_METRICS, OVERVIEW_METRICS - shown["overview.json"]
    # Every worker metric of the catalog is on the workers dashboard.
    worker_metrics = {
        name
        for name in catalog_metrics((OPS / "METRICS.md").read_text())
        if name.startswith("signer_worker_") and not name.endswith("_created")
    }
    on_workers = shown["workers.json"]
    missing = {
        name
        for name in worker_metrics
        # A histogram is shown when any of its series is.
        if not {name, *(name.rsplit("_", 1)[0] + s for s in ("_bucket", "_sum", "_count"))}
        & on_workers
    }
    assert not missing, f"worker metrics not on the workers dashboard: {sorted(missing)}"


# Postgres panels.

FREE_DAILY_LIMIT = 5000  # the usage dashboard's default, as the API's SIGNER_LIMIT_FREE_PER_DAY


@pytest.fixture
async def usage_database(postgres: PostgresServer) -> AsyncIterator[asyncpg.Connection[Any]]:
    """A migrated database with two users (free, api_key), their keys, usage rows now and
    two hours ago (signed and failed, with a key and anonymous) and today's quota rows."""
    async with postgres.database() as url:
        await apply_migrations(url)
        conn = await asyncpg.connect(url)
        try:
            await _seed(conn)
            yield conn
        finally:
            await conn.close()


async def _seed(conn: asyncpg.Connection[Any]) -> None:
    users = {}
    for email, tier in (("free@example.com", "free"), ("paid@example.com", "api_key")):
        users[tier] = await conn.fetchval(
            "INSERT INTO users (email, tier) VALUES ($1, $2) RETURNING id", email, tier
        )
    keys = {}
    for n, (tier, prefix, per_day) in enumerate(
        (("free", "sk_Free0001", None), ("api_key", "sk_Paid0001", 1000))
    ):
        keys[tier] = await conn.fetchval(
            "INSERT INTO api_keys (user_id, key_hash, prefix, name, per_day)"
            " VALUES ($1, $2, $3, $4, $5) RETURNING id",
            users[tier],
            f"{n:064x}",
            prefix,
            f"{tier} key",
            per_day,
        )
    callers: list[tuple[Any, Any, str | None]] = [
        (users["free"], keys["free"], "sk_Free0001"),
        (users["api_key"], keys["api_key"], "sk_Paid0001"),
        (None, None, None),  # anonymous
    ]
    for user_id, key_id, key_prefix in callers:
        for ago in (timedelta(0), timedelta(hours=2)):
            for success, status, error in ((True, 200, None), (False, 503, "SERVICE_UNAVAILABLE")):
                await conn.execute(
                    "INSERT INTO usage_logs (created_at, request_id, user_id, api_key_id,"
                    " key_prefix, client_ip, route, dialect, target, success, status_code,"
                    " error_type, response_time_ms)"
                    " VALUES (now() - $1::interval, gen_random_uuid()::text, $2, $3, $4,"
                    " '127.0.0.1', 'api_signature', 'structured', 'webcast.tiktok.com/x',"
                    " $5, $6, $7, 12.5)",
                    ago, user_id, key_id, key_prefix, success, status, error,
                )  # fmt: skip
    today = "(now() AT TIME ZONE 'utc')::date"
    await conn.execute(
        "INSERT INTO quota_usage (user_id, date, request_count)"
        f" VALUES ($1, {today}, 4000), ($2, {today}, 900)",
        users["free"],
        users["api_key"],
    )


async def test_postgres_panels_run_on_the_real_schema(
    usage_database: asyncpg.Connection[Any],
) -> None:
    failures = []
    checked = 0
    for dashboard, query in postgres_queries():
        sql = concrete_sql(query, dashboard)
        try:
            rows = await usage_database.fetch(sql)
        except asyncpg.PostgresError as error:
            failures.append(f"{query.where}: {error}\n{sql}")
            continue
        checked += 1
        if not rows:
            failures.append(f"{query.where}: no rows from seeded data\n{sql}")
        elif query.format == "time_series":
            if "time" not in rows[0]:
                failures.append(f"{query.where}: a time series needs a `time` column")
            elif [r["time"] for r in rows] != sorted(r["time"] for r in rows):
                failures.append(f"{query.where}: rows not ordered by time")
    assert not failures, "\n\n".join(failures)
    assert checked >= 10, f"only {checked} Postgres queries found"


async def test_the_quota_panel_agrees_with_the_exported_ratio(
    usage_database: asyncpg.Connection[Any],
) -> None:
    # The usage dashboard's per-tier quota use and the API's signer_quota_use_ratio
    # (which the quota alert reads) must be one figure.
    (dashboard, query) = next(
        (d, q) for d, q in postgres_queries() if "'Highest quota use by tier'" in q.where
    )
    rows = await usage_database.fetch(concrete_sql(query, dashboard))
    panel = {row["tier"]: row["quota use"] for row in rows}
    exported = quota_use_by_tier(await usage_database.fetch(QUOTA_TODAY_SQL), FREE_DAILY_LIMIT)
    assert panel == exported == {"free": 0.8, "api_key": 0.9}


def test_the_usage_dashboard_free_limit_is_the_api_default() -> None:
    usage = load_dashboards()["usage.json"]
    (variable,) = [v for v in usage["templating"]["list"] if v["name"] == "free_daily_limit"]
    default = RateLimitSettings.model_fields["free_per_day"].default
    assert int(variable["query"]) == default == FREE_DAILY_LIMIT
