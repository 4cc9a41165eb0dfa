"""CPU time of whole process trees (a server and every process it started), read from /proc."""

import os
from collections.abc import Iterable, Mapping
from pathlib import Path

PROC = Path("/proc")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def read_stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, CPU seconds) of a live process, counting the children it has reaped."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # Fields after the command name, which may hold spaces: state, ppid, ... utime is field 14.
    fields = stat.rpartition(")")[2].split()
    utime, stime, cutime, cstime = (int(value) for value in fields[11:15])
    return int(fields[1]), (utime + stime + cutime + cstime) / CLOCK_TICKS


def live_processes() -> dict[int, tuple[int, float]]:
    """(parent pid, CPU seconds) of every live process, by pid."""
    stats: dict[int, tuple[int, float]] = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit() and (stat := read_stat(int(entry.name))) is not None:
            stats[int(entry.name)] = stat
    return stats


def cpu_seconds_by_tree(trees: Mapping[str, Iterable[int]]) -> dict[str, float]:
    """CPU seconds used so far by each named tree: its roots and all their descendants, live or
    reaped, from one look at /proc so that the trees are read at the same moment.

    A reaped process's time sits in its parent's cutime/cstime, so summing every live process
    of a tree with its reaped children's time counts each process exactly once. A process in
    two trees counts in the first only, so the trees' times add up to the time of their union.
    """
    stats = live_processes()
    children: dict[int, list[int]] = {}
    for pid, (parent, _) in stats.items():
        children.setdefault(parent, []).append(pid)
    seen: set[int] = set()
    totals: dict[str, float] = {}
    for name, roots in trees.items():
        total = 0.0
        pending = [pid for pid in roots if pid in stats]
        while pending:
            pid = pending.pop()
            if pid in seen:
                continue
            seen.add(pid)
            total += stats[pid][1]
            pending.extend(children.get(pid, ()))
        totals[name] = total
    return totals
