"""Machine-readable bench results: every ``bench/*.py`` saves one JSON document into ``.saaskit/bench/``
(``save``), and ``bench/lib/report.py`` turns them into ``bench/REPORT.md`` with plots.

``QUICK=1`` (``make bench QUICK=1``) asks each script for a short run: smaller sizes, fewer rounds.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from pathlib import Path
from typing import Any

BASE_DIR = Path(__file__).resolve().parent.parent.parent
OUT_DIR = BASE_DIR / ".saaskit" / "bench"
QUICK = os.environ.get("QUICK", "").strip() not in ("", "0", "false", "no")


def pick(quick: Any, full: Any) -> Any:
    """The quick-run value or the full-run value."""
    return quick if QUICK else full


def spread(values: list[float]) -> dict[str, float]:
    """Median of the rounds and their spread (min, max, and the relative half-range)."""
    values = [float(v) for v in values]
    med = statistics.median(values)
    return {"median": med, "min": min(values), "max": max(values), "rounds": values,
            "spread_pct": (max(values) - min(values)) / 2 / med * 100 if med else 0.0}


def save(name: str, data: dict[str, Any]) -> Path:
    """Write ``.saaskit/bench/<name>.json`` with the run's date, mode and load average beside ``data``."""
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    doc = {"name": name, "quick": QUICK, "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
           "load_average": os.getloadavg(), "python": platform.python_version(), "data": data}
    path = OUT_DIR / f"{name}.json"
    path.write_text(json.dumps(doc, indent=1, default=str))
    print(f"  (results saved to {path.relative_to(BASE_DIR)})")
    return path
