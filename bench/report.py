"""What every benchmark records: the machine it ran on, and its JSON in bench/results/."""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import Any

__all__ = ["machine", "write_results"]

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict[str, Any]:
    """Python, platform, cores, the load when the run starts and the signing engine."""
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "loadavg_at_start": os.getloadavg(),
        "engine": os.environ.get("SIGNER_ENGINE", "browser"),
    }


def write_results(kind: str, report: dict[str, Any], started: float | None = None) -> Path:
    """Write `report` to bench/results/<kind>-<unix time>.json; its path."""
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"{kind}-{int(started if started is not None else time.time())}.json"
    out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    return out
