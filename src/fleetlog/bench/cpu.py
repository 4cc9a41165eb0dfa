"""CPU time of whole process trees (a server and every process it started), read from /proc."""

import os
from collections.abc import Iterable
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


def tree_cpu_seconds(roots: Iterable[int]) -> float:
    """CPU seconds used so far by `roots` and all their descendants, live or reaped.

    A reaped process's time sits in its parent's cutime/cstime, so summing every live process
    of the tree with its reaped children's time counts each process exactly once.
    """
    stats: dict[int, tuple[int, float]] = {}
    for entry in PROC.iterdir():
        if entry.name.isdigit() and (stat := read_stat(int(entry.name))) is not None:
            stats[int(entry.name)] = stat
    children: dict[int, list[int]] = {}
    for pid, (parent, _) in stats.items():
        children.setdefault(parent, []).append(pid)
    total = 0.0
    pending = [pid for pid in roots if pid in stats]
    seen: set[int] = set()
    while pending:
        pid = pending.pop()
        if pid in seen:
            continue
        seen.add(pid)
        total += stats[pid][1]
        pending.extend(children.get(pid, ()))
    return total
