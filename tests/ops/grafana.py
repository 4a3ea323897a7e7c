"""Reading the Grafana dashboards and provisioning files under ops/grafana, and turning
their queries into what Prometheus and Postgres run (Grafana's variables and macros
replaced by concrete values)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import yaml

__all__ = [
    "DASHBOARDS",
    "OPS",
    "PROVISIONING",
    "Query",
    "concrete_promql",
    "concrete_sql",
    "datasources",
    "load_dashboards",
    "load_yaml",
    "panels",
    "queries",
    "variable_queries",
]

OPS = Path(__file__).resolve().parents[2] / "ops"
DASHBOARDS = OPS / "grafana" / "dashboards"
PROVISIONING = OPS / "grafana" / "provisioning"

# What Grafana puts for its built-in interval variables, for a 6 h range at 15 s scrapes.
_PROMETHEUS_BUILTINS = {"__rate_interval": "1m", "__interval": "15s", "__range": "6h"}
_VARIABLE = re.compile(r"\$(?:\{(\w+)(?::\w+)?\}|(\w+))")


@dataclass(frozen=True)
class Query:
    """One query of one panel: where it is (for messages), its data source and its text."""

    where: str
    datasource: dict[str, Any]
    text: str  # PromQL for Prometheus, SQL for Postgres
    format: str | None


def load_yaml(path: Path) -> dict[str, Any]:
    loaded = yaml.safe_load(path.read_text())
    assert isinstance(loaded, dict), f"{path}: not a YAML mapping"
    return cast(dict[str, Any], loaded)


def load_dashboards() -> dict[str, dict[str, Any]]:
    """Every dashboard JSON file, by file name."""
    loaded: dict[str, dict[str, Any]] = {}
    for path in sorted(DASHBOARDS.glob("*.json")):
        loaded[path.name] = cast(dict[str, Any], json.loads(path.read_text()))
    return loaded


def datasources() -> dict[str, dict[str, Any]]:
    """The provisioned data sources, by uid."""
    found: dict[str, dict[str, Any]] = {}
    for path in sorted((PROVISIONING / "datasources").glob("*.yml")):
        for source in load_yaml(path).get("datasources", []):
            found[source["uid"]] = source
    return found


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, those inside collapsed rows included."""
    for panel in dashboard.get("panels", []):
        yield panel
        yield from panel.get("panels", [])


def _where(file: str, panel: dict[str, Any], ref: str) -> str:
    return f"{file}: panel {panel.get('id')} {panel.get('title')!r}, query {ref}"


def queries(file: str, dashboard: dict[str, Any]) -> Iterator[Query]:
    """Every panel target; a target without its own data source uses its panel's."""
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            source = target.get("datasource") or panel.get("datasource") or {}
            text = target.get("expr") if "expr" in target else target.get("rawSql", "")
            yield Query(
                _where(file, panel, target.get("refId", "?")),
                source,
                str(text),
                target.get("format"),
            )


def variable_queries(file: str, dashboard: dict[str, Any]) -> Iterator[Query]:
    """The queries of `query` variables (e.g. `label_values(metric, label)`)."""
    for variable in dashboard.get("templating", {}).get("list", []):
        if variable.get("type") != "query":
            continue
        query = variable.get("query")
        text = query.get("query", "") if isinstance(query, dict) else str(query)
        yield Query(
            f"{file}: variable ${variable['name']}",
            variable.get("datasource") or {},
            str(text),
            None,
        )


def _variables(dashboard: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {v["name"]: v for v in dashboard.get("templating", {}).get("list", [])}


def _substitute(text: str, value_of: dict[str, str], where: str) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in value_of:
            raise AssertionError(f"{where}: unknown variable ${name}")
        return value_of[name]

    return _VARIABLE.sub(replace, text)


def concrete_promql(query: Query, dashboard: dict[str, Any]) -> str:
    """The expression with Grafana's variables replaced: constants by their value,
    selectable variables by `.*` (they are only used in `=~` matchers)."""
    value_of = dict(_PROMETHEUS_BUILTINS)
    for name, variable in _variables(dashboard).items():
        value_of[name] = str(variable["query"]) if variable["type"] == "constant" else ".*"
    return _substitute(query.text, value_of, query.where)


_TIME_FILTER = re.compile(r"\$__timeFilter\(([^)]+)\)")
_TIME_GROUP_ALIAS = re.compile(r"\$__timeGroupAlias\(([^,]+),\s*'?(\w+)'?\)")
_TIME_GROUP = re.compile(r"\$__timeGroup\(([^,]+),\s*'?(\w+)'?\)")
_UNITS = {"1m": "minute", "1h": "hour", "1d": "day"}
_RANGE_START = "now() - interval '1 day'"


def _unit(interval: str, where: str) -> str:
    if interval not in _UNITS:
        raise AssertionError(f"{where}: no date_trunc for interval {interval!r}")
    return _UNITS[interval]


def _sql_value(variable: dict[str, Any]) -> str:
    """What Grafana puts for a variable in SQL: every option of a multi-value variable
    ("All"), quoted and comma-separated; a textbox's or constant's value as written."""
    if variable["type"] == "custom":
        values = [v.strip() for v in str(variable["query"]).split(",")]
        return ",".join("'" + v.replace("'", "''") + "'" for v in values)
    return str(variable["query"])


def concrete_sql(query: Query, dashboard: dict[str, Any]) -> str:
    """The SQL with Grafana's macros made concrete for a one-day range, and variables
    set to all their values."""
    sql = _TIME_FILTER.sub(lambda m: f"{m.group(1)} BETWEEN {_RANGE_START} AND now()", query.text)
    sql = _TIME_GROUP_ALIAS.sub(
        lambda m: f"date_trunc('{_unit(m.group(2), query.where)}', {m.group(1)}) AS time", sql
    )
    sql = _TIME_GROUP.sub(
        lambda m: f"date_trunc('{_unit(m.group(2), query.where)}', {m.group(1)})", sql
    )
    sql = sql.replace("$__timeFrom()", f"({_RANGE_START})").replace("$__timeTo()", "now()")
    if "$__" in sql:
        raise AssertionError(f"{query.where}: a Grafana macro the test cannot translate: {sql}")
    value_of = {name: _sql_value(v) for name, v in _variables(dashboard).items()}
    return _substitute(sql, value_of, query.where)
