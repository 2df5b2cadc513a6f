"""Sizes for people: one spelling of byte counts for every message and label (standard library only)."""
from __future__ import annotations


def human_bytes(n: float) -> str:
    """1234567 -> '1.2 MB' (decimal units, as file managers show them)."""
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            if unit == "bytes":
                return "1 byte" if n == 1 else f"{int(n)} bytes"
            return f"{n:.1f} {unit}"
        n /= 1000
    raise AssertionError("unreachable")
