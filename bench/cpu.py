"""Where a machine's CPU went over a stretch of time, by process group, from /proc.

    before = CpuSample.take(server_pid)
    ...  # the load
    shares = CpuSample.take(server_pid).since(before)   # {"server": 0.83, "postgres": 0.31, ...}

Shares are in cores (1.0 = one core busy the whole time). The groups: the server's process
tree (the pid given and its descendants) split into its face-analysis children ("analysis")
and the processes that answer requests ("server"), PostgreSQL, Redis, the local S3 server (Ceph), and
everything else; "machine" is the whole box from /proc/stat (what was not idle or waiting on
the disk). A process that started and ended between the two samples is not seen: the load
generator reports its own CPU (``time.process_time``) for that reason.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

from invigil.analysis.offload import ANALYSIS_PROCESS_NAME

TICKS = os.sysconf("SC_CLK_TCK")
# By the command name in /proc/<pid>/stat (at most 15 characters).
GROUPS = {
    "postgres": "postgres",
    "redis-server": "redis",
    "radosgw": "s3",
    "ceph-osd": "s3",
    "ceph-mon": "s3",
}


def _stat(pid: str) -> tuple[str, int, float] | None:
    """(command, parent pid, CPU seconds of the process and its threads)."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:  # gone meanwhile
        return None
    head, tail = raw.rsplit(")", 1)
    fields = tail.split()
    return head.split("(", 1)[1], int(fields[1]), (int(fields[11]) + int(fields[12])) / TICKS


def _machine_busy() -> float:
    """CPU seconds the machine spent busy (all cores), from /proc/stat's first line."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return (sum(values[:8]) - idle) / TICKS


@dataclass
class CpuSample:
    at: float
    machine: float
    by_pid: dict[int, tuple[str, float]]  # pid: (group, CPU seconds)

    @classmethod
    def take(cls, server_pid: int | None) -> CpuSample:
        stats: dict[int, tuple[str, int, float]] = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit() and (found := _stat(entry)) is not None:
                stats[int(entry)] = found
        server = _tree(stats, server_pid) if server_pid else set()
        by_pid = {}
        for pid, (comm, _, cpu) in stats.items():
            group = GROUPS.get(comm, "other")
            if pid in server:
                # The face-analysis child of a server process names itself (analysis/offload.py);
                # a server process with --workers is spawned the same way.
                group = "analysis" if comm == ANALYSIS_PROCESS_NAME else "server"
            by_pid[pid] = (group, cpu)
        return cls(time.monotonic(), _machine_busy(), by_pid)

    def since(self, before: CpuSample) -> dict[str, float]:
        """Cores used per group between ``before`` and this sample."""
        wall = self.at - before.at
        used: dict[str, float] = {}
        for pid, (group, cpu) in self.by_pid.items():
            start = before.by_pid.get(pid, (group, 0.0))[1]
            used[group] = used.get(group, 0.0) + max(0.0, cpu - start)
        shares = {group: seconds / wall for group, seconds in used.items()}
        shares["machine"] = (self.machine - before.machine) / wall
        return shares


def _tree(stats: dict[int, tuple[str, int, float]], root: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for pid, (_, parent, _) in stats.items():
        children.setdefault(parent, []).append(pid)
    out, todo = set(), [root]
    while todo:
        pid = todo.pop()
        if pid not in out:
            out.add(pid)
            todo.extend(children.get(pid, []))
    return out
