"""CPU time of whole process trees (a server and every process it started), read from /proc."""

import os
from collections.abc import Callable, Iterable, Mapping
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


class CpuClock:
    """CPU seconds used by named process trees since the clock started. A tree with no process
    then (a worker held back until the load ends) counts from `start_late`, once it is up."""

    def __init__(self, trees: Callable[[], Mapping[str, Iterable[int]]]) -> None:
        self.trees = trees
        first = {name: list(pids) for name, pids in trees().items()}
        self.counting = any(first.values())
        self.waiting = {name for name, pids in first.items() if not pids}
        self.start = cpu_seconds_by_tree(first)

    def start_late(self) -> None:
        """Start the clock of the trees that had no process at the start and have one now."""
        now = {name: list(pids) for name, pids in self.trees().items()}
        started = {name for name in self.waiting if now.get(name)}
        seconds = cpu_seconds_by_tree(now)
        self.start |= {name: seconds[name] for name in started}
        self.waiting -= started

    def elapsed(self) -> dict[str, float] | None:
        """CPU seconds of each tree since its start; None if no tree had a process at the start
        (`--url` without `--server-pid`)."""
        if not self.counting:
            return None
        now = cpu_seconds_by_tree(self.trees())
        return {name: seconds - self.start.get(name, 0.0) for name, seconds in now.items()}
