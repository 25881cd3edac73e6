"""Byte sizes: parse `10M`, `1.5G`, `4KiB`; print them short (`1.0G`)."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

U64_MAX = (1 << 64) - 1
_UNITS = "KMGTPE"
# number, optional K/M/G/T (any case), optional `i`, optional `B`: 10M, 10m, 10MiB, 10mb, 1024, 512B
_SIZE_RE = re.compile(r"^(\d+(?:\.\d*)?|\.\d+)\s*(?:([kmgt])(i?)b?|b)?$", re.IGNORECASE)


def parse_size(text: str) -> int:
    """IEC size (powers of 1024) -> bytes. Raises ValueError with a reason."""
    s = text.strip()
    if s.startswith("-"):
        raise ValueError("is negative")
    m = _SIZE_RE.match(s)
    if not m:
        raise ValueError("is not a size (bytes, or a K/M/G/T suffix: 512M, 1.5G)")
    try:
        number = Decimal(m.group(1))
    except InvalidOperation:  # pragma: no cover - the regex admits only digits
        raise ValueError("is not a number") from None
    power = _UNITS.index(m.group(2).upper()) + 1 if m.group(2) else 0
    value = int(number * (1024 ** power))  # fractions of a byte round down
    if value > U64_MAX:
        raise ValueError("is too large (at most 2^64-1 bytes)")
    return value


def format_size(n: int) -> str:
    """Short human size: 512B, 1.0K, 10.0M, 1.3G."""
    if n < 1024:
        return f"{n}B"
    value = float(n)
    for unit in _UNITS:
        value /= 1024
        if value < 1024 or unit == _UNITS[-1]:
            return f"{value:.1f}{unit}"
    raise AssertionError("unreachable")
