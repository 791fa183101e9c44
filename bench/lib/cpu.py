"""CPU time of processes from /proc (utime + stime), for benchmarks on a shared machine: unlike wall-clock rates, it
barely moves with the load other jobs put on the CPUs."""

from __future__ import annotations

import os
from pathlib import Path

_TICK = os.sysconf("SC_CLK_TCK")


def _all_stats() -> dict[int, list[str]]:
    stats: dict[int, list[str]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stats[int(entry.name)] = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
    return stats


def tree_seconds(groups: dict[str, list[int | None]]) -> dict[str, float]:
    """Per group: user + system CPU seconds of its processes, their live descendants and the children they reaped
    (one look at /proc for all groups)."""
    stats = _all_stats()
    children: dict[int, list[int]] = {}
    for pid, fields in stats.items():
        children.setdefault(int(fields[1]), []).append(pid)
    totals = {}
    for group, roots in groups.items():
        total, todo = 0.0, [r for r in roots if r is not None]
        while todo:
            fields = stats.get(pid := todo.pop())
            if fields is None:
                continue
            total += sum(int(f) for f in fields[11:15]) / _TICK  # utime, stime, cutime, cstime
            todo.extend(children.get(pid, []))
        totals[group] = total
    return totals


def process_tree_seconds(root: int) -> float:
    """User + system CPU seconds of ``root``, its live descendants and the children they reaped."""
    return tree_seconds({"root": [root]})["root"]


def pid_from_file(path: Path) -> int | None:
    """The process named by a pid file (PostgreSQL's postmaster.pid, Redis' pidfile), if it runs."""
    try:
        pid = int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if Path(f"/proc/{pid}").exists() else None
