"""Draw the Overview dashboard's panels from a real run, for the README.

    .venv/bin/pip install matplotlib
    .venv/bin/python scripts/render_overview.py [--seconds 90] [--out docs/overview.png]

Grafana's server cannot be installed here, so this draws the panels itself from the same
queries: it starts the stack (private Redis and Postgres, one browser worker, the API
with rate limits on), a real Prometheus (Debian's package) with our recording and alert
rules scraping the API and the worker every second, drives traffic in steps (signing
with an `api_key` key at 2, 8 and 24 clients, anonymous bursts that meet the rate limit,
and a few invalid URLs), then asks Prometheus for every query of
`ops/grafana/dashboards/overview.json` over the run and lays the panels out as the
dashboard's grid does.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import shutil
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from service.stack.services import free_port  # noqa: E402
from tests.ops.live import prometheus_api, running_prometheus  # noqa: E402
from tests.service_stack import issue_key, service_stack  # noqa: E402

DASHBOARD = ROOT / "ops" / "grafana" / "dashboards" / "overview.json"
RULES = ROOT / "ops" / "prometheus" / "rules"
SIGN_URL = (
    "https://webcast.tiktok.com/webcast/im/fetch/?aid=1988&app_name=tiktok_web"
    "&room_id=7312345678901234567"
)
ANONYMOUS_PER_MINUTE = 20
RATE_INTERVAL = "15s"  # $__rate_interval for a 1 s scrape over a short run
STEP = 2  # seconds between points
_VARIABLE = re.compile(r"\$(?:\{(\w+)\}|(\w+))")


def _promql(expr: str, constants: dict[str, str]) -> str:
    values = {"__rate_interval": RATE_INTERVAL, "__interval": f"{STEP}s"} | constants

    def replace(match: re.Match[str]) -> str:
        return values[match.group(1) or match.group(2)]

    return _VARIABLE.sub(replace, expr)


async def _traffic(base: str, key: str, seconds: float) -> dict[str, int]:
    """Signing in steps of 2, 8 and 24 clients, with anonymous bursts and bad URLs."""
    statuses: dict[str, int] = {}
    stop_at = time.monotonic() + seconds
    step_length = seconds / 3

    async def call(session: aiohttp.ClientSession, url: str, with_key: bool) -> None:
        query = {"url": url} | ({"apiKey": key} if with_key else {})
        try:
            async with session.get(
                f"{base}/webcast/sign_url?{urllib.parse.urlencode(query)}"
            ) as response:
                await response.read()
                statuses[str(response.status)] = statuses.get(str(response.status), 0) + 1
        except aiohttp.ClientError:
            statuses["failed"] = statuses.get("failed", 0) + 1

    async def client(session: aiohttp.ClientSession, index: int, starts: float) -> None:
        await asyncio.sleep(max(starts - time.monotonic(), 0))
        n = 0
        while time.monotonic() < stop_at:
            n += 1
            await call(session, f"{SIGN_URL}&cursor={index}-{n}", with_key=True)

    async def extras(session: aiohttp.ClientSession) -> None:
        tick = 0
        while time.monotonic() < stop_at:
            tick += 1
            await call(session, "https://example.com/not-tiktok", with_key=True)
            if tick % 15 == 0:  # an anonymous burst past its budget
                await asyncio.gather(*(call(session, SIGN_URL, with_key=False) for _ in range(30)))
            await asyncio.sleep(1)

    begin = time.monotonic()
    starts = [begin] * 2 + [begin + step_length] * 6 + [begin + 2 * step_length] * 16
    connector = aiohttp.TCPConnector(limit=64)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(
            *(client(session, i, at) for i, at in enumerate(starts)), extras(session)
        )
    return statuses


def _series(base: str, expr: str, start: float, end: float) -> list[dict[str, Any]]:
    data = prometheus_api(
        base,
        "/api/v1/query_range",
        query=expr,
        start=str(start),
        end=str(end),
        step=str(STEP),
    )
    result: list[dict[str, Any]] = data["result"]
    return result


def _legend(template: str, metric: dict[str, str]) -> str:
    return re.sub(r"\{\{\s*(\w+)\s*\}\}", lambda m: metric.get(m.group(1), ""), template)


def _draw(
    dashboard: dict[str, Any], base: str, start: float, end: float, out: Path, note: str
) -> None:
    constants = {
        v["name"]: str(v["query"])
        for v in dashboard.get("templating", {}).get("list", [])
        if v["type"] == "constant"
    }
    panels = [p for p in dashboard["panels"] if p["type"] in ("stat", "timeseries", "row")]
    bottom = max(p["gridPos"]["y"] + p["gridPos"]["h"] for p in panels)
    unit_height = 0.42  # inches per grid row
    figure = plt.figure(figsize=(16, bottom * unit_height + 0.8), facecolor="#111217")
    top_margin = 0.8 / (bottom * unit_height + 0.8)
    figure.text(
        0.01,
        1 - top_margin / 2,
        f"{dashboard['title']} — {note}",
        color="#d8d9da",
        fontsize=13,
        va="center",
    )

    def box(grid: dict[str, int]) -> tuple[float, float, float, float]:
        usable = 1 - top_margin
        height = grid["h"] / bottom * usable
        top = 1 - top_margin - grid["y"] / bottom * usable
        # Room on the left of each panel for its y-axis labels.
        return (grid["x"] / 24 + 0.03, top - height + 0.012, grid["w"] / 24 - 0.036, height - 0.03)

    for panel in panels:
        grid = panel["gridPos"]
        if panel["type"] == "row":
            x, y = grid["x"] / 24 + 0.006, box(grid)[1] + 0.004
            figure.text(x, y, panel["title"], color="#d8d9da", fontsize=11, weight="bold")
            continue
        axes = figure.add_axes(box(grid), facecolor="#181b1f")
        axes.set_title(panel["title"], color="#d8d9da", fontsize=9, loc="left")
        for spine in axes.spines.values():
            spine.set_color("#2c3235")
        axes.tick_params(colors="#8e8e8e", labelsize=7)
        lines = []
        for target in panel.get("targets", []):
            expr = _promql(target["expr"], constants)
            for series in _series(base, expr, start, end):
                points = [(float(t) - start, float(v)) for t, v in series["values"]]
                points = [(t, v) for t, v in points if v == v]  # drop NaN
                if points:
                    label = _legend(target.get("legendFormat", ""), series["metric"])
                    lines.append((label, points))
        if panel["type"] == "stat":
            axes.set_xticks([])
            axes.set_yticks([])
            text = "  ".join(f"{label} {pts[-1][1]:.3g}" for label, pts in lines) or "no data"
            axes.text(0.5, 0.45, text, color="#73bf69", fontsize=12, ha="center", va="center")
            continue
        for label, points in lines:
            axes.plot([t for t, _ in points], [v for _, v in points], linewidth=1.2, label=label)
        if lines:
            axes.legend(fontsize=6, loc="upper left", facecolor="#181b1f", labelcolor="#d8d9da")
        axes.set_xlabel("seconds into the run", color="#8e8e8e", fontsize=7)
        axes.grid(color="#2c3235", linewidth=0.5)
    out.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(out, dpi=80, facecolor=figure.get_facecolor())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=90.0, help="length of the traffic")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "overview.png")
    args = parser.parse_args()
    prometheus = shutil.which("prometheus")
    if prometheus is None:
        print("prometheus not found: apt-get install -y prometheus", file=sys.stderr)
        return 1
    dashboard = json.loads(DASHBOARD.read_text())
    metrics_port = free_port()
    env = {
        "SIGNER_LIMIT_ANONYMOUS_PER_MINUTE": str(ANONYMOUS_PER_MINUTE),
        "SIGNER_LIMIT_ANONYMOUS_PER_DAY": "none",
        "SIGNER_LOG_LEVEL": "WARNING",
    }
    folder = Path(tempfile.mkdtemp(prefix="render-overview-"))
    with service_stack(
        engine="browser", limits=True, env=env, worker_metrics_port=metrics_port
    ) as stack:
        key = issue_key(stack.env, "render@example.com", "api_key")
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(RULES / "recording.yml"), str(RULES / "alerts.yml")],
            "scrape_configs": [
                {
                    "job_name": "signer-api",
                    "static_configs": [{"targets": [stack.base.removeprefix("http://")]}],
                },
                {
                    "job_name": "signer-worker",
                    "static_configs": [{"targets": [f"127.0.0.1:{metrics_port}"]}],
                },
            ],
        }
        with running_prometheus(prometheus, config, folder, free_port()) as base:
            time.sleep(3)
            start = time.time()
            statuses = asyncio.run(_traffic(stack.base, key, args.seconds))
            time.sleep(5)
            end = time.time()
            note = (
                f"a real run: 1 API, 1 browser worker, {args.seconds:.0f} s, "
                f"answers {dict(sorted(statuses.items()))}"
            )
            _draw(dashboard, base, start, end, args.out, note)
    print(f"answers: {statuses}")
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
