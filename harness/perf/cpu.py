"""CPU time of processes on this machine, read from /proc, for `harness bench`'s CPU-per-job figures.

A rate on a shared 2-core machine moves with whatever else the machine runs: a neighbour that takes half a
core for a minute takes a third off every figure measured in that minute. The CPU time a job costs (the
client process plus its server backends) barely moves with the neighbours, since stolen time is not counted.
So beside each rate the bench reports CPU microseconds per job, for our worker and for the peer alike.

Why not psutil: this reads two fields of one file; a dependency for that is not worth it. Why clock ticks
(10 ms on most kernels) and not nanoseconds: /proc/<pid>/schedstat has nanoseconds, but it reads zero where
the kernel keeps no scheduler statistics, as on this project's CI machines. A drain of thousands of jobs runs
for a second or more, so the tick is fine enough for a figure per job.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass

TICKS_PER_S = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_seconds(pids: Iterable[int]) -> float | None:
    """User plus system CPU time, in seconds, that the processes `pids` (every thread of each) have used so
    far; None when one of them cannot be read (no /proc, or the process is gone)."""
    ticks = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                text = stat.read()
        except OSError:
            return None
        # The command name (field 2) is in parentheses and may hold spaces: count fields after its last ")".
        fields = text.rsplit(")", 1)[1].split()
        ticks += int(fields[11]) + int(fields[12])  # utime and stime, fields 14 and 15 of proc(5)
    return ticks / TICKS_PER_S


@dataclass
class Drain:
    """One drain of seeded jobs: its rate, and the CPU microseconds each job cost the client process and its
    server backends together (None where they could not be read)."""

    jobs_per_s: float
    cpu_us_per_job: float | None = None
