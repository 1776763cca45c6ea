"""Shared by the benchmarks: the machine they ran on, and writing one section of
docs/benchmarks.md (or docs/accuracy.md) without touching the others."""

from __future__ import annotations

import os
import platform
import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path

BENCHMARKS_MD = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
HEADER = (
    "# Benchmarks\n\n"
    "Each section is written by its script in `bench/`; rerun the script to refresh it. "
    "Absolute times on a shared 2-core machine drift; the ratio to the baseline measured in "
    "the same run is the figure to compare.\n"
)


def machine() -> str:
    cpu = platform.processor() or "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f", {kib / 1024 / 1024:.0f} GiB RAM"
    except (OSError, ValueError, IndexError):
        pass
    disk = ""
    try:
        out = subprocess.run(["df", "-h", "."], capture_output=True, text=True, check=False)
        disk = f", disk {out.stdout.splitlines()[1].split()[1]}"
    except (OSError, IndexError):
        pass
    return (
        f"{cpu}, {os.cpu_count()} cores{mem}{disk}; Linux {platform.release()}; "
        f"Python {platform.python_version()}"
    )


def write_section(
    title: str, body: str, *, path: Path = BENCHMARKS_MD, header: str = HEADER, stamp: bool = True
) -> None:
    """Replace (or append) the ``## title`` section of ``path`` (docs/benchmarks.md), stamped
    with the time and the machine unless the body carries its own stamp."""
    text = path.read_text(encoding="utf-8") if path.exists() else header
    when = f"_Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {machine()}._\n\n" if stamp else ""
    section = f"## {title}\n\n{when}{body.strip()}\n"
    pattern = re.compile(rf"^## {re.escape(title)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        text = pattern.sub(lambda _: section + "\n", text, count=1)
    else:
        text = text.rstrip() + "\n\n" + section
    path.parent.mkdir(exist_ok=True)
    path.write_text(text.rstrip() + "\n", encoding="utf-8")


def source_at(ref: str, into: Path) -> Path:
    """The ``src`` folder of the repository at commit ``ref``, extracted under ``into`` (to
    measure the code *before* a change in the same run as the code after it)."""
    root = Path(__file__).resolve().parent.parent
    archive = subprocess.run(
        ["git", "-C", str(root), "archive", ref, "src"], capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into / "src"
