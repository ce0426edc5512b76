"""CPU seconds spent by the processes of a measure, from ``/proc`` (Linux).

Used by measure 1 to show where a sync's time goes on a small machine: the worker (work
horse included), the sandbox and the PostgreSQL server all need CPU, and the floor needs
only the sandbox and one parsing client.
"""
from __future__ import annotations

import os
import resource
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid):
    """``(comm, ppid, own seconds, reaped children's seconds)`` of ``pid``, or None."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    comm = text[text.index("(") + 1:text.rindex(")")]
    fields = text[text.rindex(")") + 2:].split()
    own = (int(fields[11]) + int(fields[12])) / _TICKS
    reaped = (int(fields[13]) + int(fields[14])) / _TICKS
    return comm, int(fields[1]), own, reaped


def process_seconds(pid):
    """CPU seconds of ``pid`` and of the children it has reaped (0 when it is gone)."""
    stat = _stat(pid)
    return stat[2] + stat[3] if stat else 0.0


def postgres_seconds():
    """CPU seconds of every PostgreSQL server on the machine: each postmaster with the
    backends it reaped, plus the live backends (a backend that exits between two readings is
    counted by its postmaster)."""
    stats = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = _stat(entry.name)
            if stat and stat[0] == "postgres":
                stats[int(entry.name)] = stat
    total = 0.0
    for _pid, (_comm, ppid, own, reaped) in stats.items():
        total += own + (reaped if ppid not in stats else 0.0)
    return total


def children_seconds():
    """CPU seconds of this process's reaped children (a burst worker and its work horses)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def own_seconds():
    """CPU seconds of this process (the floor's fetching and parsing client)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class CpuMeter:
    """Reads the CPU of the worker (reaped children), the sandbox and PostgreSQL before and
    after a step; :meth:`seconds` answers the differences."""

    def __init__(self, sandbox_pid=None):
        self.sandbox_pid = sandbox_pid
        self._start = self._read()

    def _read(self):
        return {"worker": children_seconds(), "postgres": postgres_seconds(),
                "sandbox": process_seconds(self.sandbox_pid) if self.sandbox_pid else 0.0}

    def seconds(self):
        end = self._read()
        return {f"cpu_{name}_seconds": round(end[name] - self._start[name], 2) for name in end}
