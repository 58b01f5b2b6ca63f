"""Resources written as Snakemake users write them: ``runtime="1h"`` is 60
minutes, ``mem="5GB"`` and ``disk="2GiB"`` also give ``mem_mb``/``disk_mb``
in megabytes, so a rule, ``--set-resources`` or a resources function may
write either form and ``{resources.mem_mb}`` works."""

from __future__ import annotations

import math
import re
from typing import Any

SIZED = ("mem", "disk")

_SIZE = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([kmgtp]?)(i?)b?\s*", re.IGNORECASE)
_SPAN = re.compile(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|m|min|h|d|w)?\s*", re.IGNORECASE)
_SPAN_SECONDS = {"ms": 0.001, "s": 1, "m": 60, "min": 60, "h": 3600, "d": 86400, "w": 604800}
_POWERS = "kmgtp"


class ResourceError(ValueError):
    """A resource text that names no size or time span."""


def normalized(resources: dict[str, Any]) -> dict[str, Any]:
    """``resources`` with a text runtime made minutes and sizes given both
    ways (``mem`` as written, ``mem_mb`` in MB); ``ResourceError`` for a text
    that is neither."""
    out = dict(resources)
    if isinstance(out.get("runtime"), str):
        out["runtime"] = minutes(out["runtime"])
    for name in SIZED:
        value = out.get(name)
        if value is not None and f"{name}_mb" not in out:
            out[f"{name}_mb"] = megabytes(value) if isinstance(value, str) else value
    return out


def megabytes(text: str) -> int:
    """``"5GB"`` -> 5000, ``"512MiB"`` -> 537 (rounded up), ``"100"`` -> 100 (MB)."""
    m = _SIZE.fullmatch(text)
    if m is None:
        raise ResourceError(f"{text!r} is not a size (e.g. 500MB, 4GB, 2GiB)")
    number, power, binary = float(m.group(1)), m.group(2).lower(), bool(m.group(3))
    if not power and math.isfinite(number):
        return math.ceil(number)  # a bare number is megabytes
    size = number * (1024 if binary else 1000) ** (_POWERS.index(power) + 1)
    if not math.isfinite(size):
        raise ResourceError(f"{text[:40]!r}... is too large a size")
    return math.ceil(size / 1e6)


def minutes(text: str) -> int | float:
    """``"1h"`` -> 60, ``"1h 30m"`` -> 90, ``"45s"`` -> 0.75, ``"90"`` -> 90 (minutes)."""
    total, pos = 0.0, 0
    for m in _SPAN.finditer(text):
        if m.start() != pos or not m.group(0).strip():
            break
        unit = (m.group(2) or "min").lower()
        total += float(m.group(1)) * _SPAN_SECONDS[unit] / 60
        pos = m.end()
    if math.isinf(total):
        raise ResourceError(f"{text[:40]!r}... is too long a time span")
    if pos != len(text) or pos == 0:
        raise ResourceError(f"{text!r} is not a time span (e.g. 90, 30m, 1h, 1h 30m, 2d)")
    return int(total) if total == int(total) else total
