"""Who the headless volunteer is: its saved host identity and the capabilities it reports."""

from __future__ import annotations

import json
import logging
import os
import platform
import re
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

USER_AGENT = f"socialgrid-volunteer/1 Python {sys.version_info.major}.{sys.version_info.minor}"
MAX_FPOPS = 1e13


@dataclass
class Identity:
    """The anonymous host's id and the signed token that proves it (from ``welcome``)."""

    host: str | None = None
    host_token: str | None = None


def load_identity(path: Path | None) -> Identity:
    if path is None or not path.exists():
        return Identity()
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        host, token = data.get("host"), data.get("host_token")
    except (OSError, ValueError, AttributeError) as e:
        # A new host is better than no volunteer: the old one's leases simply time out.
        log.warning("ignoring unreadable state file %s (%s); starting as a new host", path, e)
        return Identity()
    if not isinstance(host, str) or not isinstance(token, str):
        return Identity()
    return Identity(host, token)


def save_identity(path: Path | None, identity: Identity, **context: Any) -> None:
    """Write atomically and readable by the owner only: the token lets anyone be this host."""
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"host": identity.host, "host_token": identity.host_token, **context}
    fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as stream:
            json.dump(data, stream, indent=2)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def measure_fpops(seconds: float = 0.2) -> float:
    """Floating-point operations per second of one core running Python, roughly: a
    multiply-add loop for about ``seconds`` of CPU time. Claimed credit scales with it."""
    x, a, b = 1.0, 0.999999, 1e-7
    operations = 0
    start = time.process_time()
    elapsed = 0.0
    while elapsed < seconds:
        for _ in range(20_000):
            x = x * a + b
        operations += 40_000
        elapsed = time.process_time() - start
    return min(operations / max(elapsed, 1e-9), MAX_FPOPS)


def platform_class() -> str:
    machine = re.sub(r"[^a-z0-9_.-]", "", platform.machine().lower()) or "unknown"
    return f"python-{machine}"[:40]


def memory_mb() -> int:
    try:
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20)
    except (ValueError, OSError, AttributeError):
        return 0


def capabilities(workers: int, benchmark_fpops: float) -> dict[str, Any]:
    return {
        "cores": workers,
        "memory_mb": min(memory_mb(), 16 * 1024 * 1024),
        "user_agent": USER_AGENT,
        "platform": platform_class(),
        "wasm": False,
        "simd": False,
        "threads": False,
        "benchmark_fpops": min(benchmark_fpops, MAX_FPOPS),
    }
