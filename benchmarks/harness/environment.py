"""The machine and library versions a benchmark ran with, for the report's header."""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata

PACKAGES = ("textproj", "numpy", "numba", "torch", "fasttext-wheel", "scikit-learn", "spacy")


def cpu_name() -> str:
    """The CPU model (from /proc/cpuinfo on Linux), or platform.processor()."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def versions() -> dict[str, str]:
    """Installed version of each package the benchmark uses ("not installed" otherwise)."""
    found = {}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def machine() -> dict[str, object]:
    """CPU model, logical CPU count, OS and Python version."""
    return {
        "cpu": cpu_name(),
        "logical_cpus": os.cpu_count(),
        "os": platform.platform(),
        "python": sys.version.split()[0],
    }
