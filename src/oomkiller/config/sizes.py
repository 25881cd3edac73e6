"""Numbers as people write them: whole numbers, plain decimals and byte sizes
(`10M`, `1.5G`, `4KiB`); and sizes printed short (`1.0G`).

ASCII digits only. Python's int(), float() and Decimal() also take `５`
(full-width), `1_000`, `+5`, `1e3`, `inf` and `nan`: nobody means those in a
limit, and `５` looks like `5` on a terminal. Each parser raises ValueError
with a predicate for the caller to put after the text: `'1X' is not a size`.
"""

from __future__ import annotations

import re
import string
from decimal import Decimal

U64_MAX = (1 << 64) - 1
_UNITS = "KMGTPE"
# str.strip() alone would also drop U+3000 and other non-ASCII blanks.
_BLANKS = string.whitespace
# 2, 0.5, .5, 2. : at least one digit. re.ASCII: \d and IGNORECASE would
# otherwise take `５` and the Kelvin sign U+212A for a k.
_DECIMAL = r"(?=\.?[0-9])([0-9]*)(?:\.([0-9]*))?"
_DECIMAL_RE = re.compile(_DECIMAL, re.ASCII)
_WHOLE_RE = re.compile(r"[0-9]+", re.ASCII)
# number, optional K/M/G/T (any case), optional `i`, optional `B`: 10M, 10m, 10MiB, 10mb, 1024, 512B
_SIZE_RE = re.compile(_DECIMAL + r"[ \t]*(?:([kmgt])(i?)b?|b)?", re.ASCII | re.IGNORECASE)
# f / 10^k of a T (2^40) is whole only if 10^k divides f * 2^40: with f's last
# digit not 0, never for k > 40. Longer fractions are refused without int(),
# which refuses more than 4300 digits (Python 3.11).
_MAX_FRACTION = 40


class NotAWholeNumber(ValueError):
    """Not digits at all (the CLI words it `not a whole number: 'x'`)."""


def _ascii(s: str) -> None:
    for c in s:
        if not c.isascii():
            raise ValueError(f"is not plain ASCII (U+{ord(c):04X}): type the digits 0-9")


def _too_large(digits: str, maximum: int) -> bool:
    """More digits (no leading zeros) than the maximum has: too large, no int() needed."""
    return len(digits) > len(str(maximum))


def whole_number(text: str, maximum: int = U64_MAX) -> int:
    """ASCII digits, nothing else (no sign, `_`, `0x`) -> int <= maximum."""
    s = text.strip(_BLANKS)
    _ascii(s)
    if not _WHOLE_RE.fullmatch(s):
        raise NotAWholeNumber("is not a whole number")
    digits = s.lstrip("0") or "0"  # int() refuses more than 4300 digits, even zeros
    if _too_large(digits, maximum) or int(digits) > maximum:
        raise ValueError(f"is too large: at most {maximum}")
    return int(digits)


def plain_decimal(text: str) -> Decimal:
    """ASCII digits with at most one `.`: 2, 0.5, .5 (no exponent, inf, nan)."""
    s = text.strip(_BLANKS)
    _ascii(s)
    if not _DECIMAL_RE.fullmatch(s):
        raise ValueError("is not a plain decimal number (such as 0.5 or 2)")
    return Decimal(s)


def parse_size(text: str, maximum: int = U64_MAX) -> int:
    """IEC size (powers of 1024) -> a whole number of bytes <= maximum.
    Raises ValueError with a reason."""
    s = text.strip(_BLANKS)
    if s.startswith("-"):
        raise ValueError("is negative")
    _ascii(s)
    m = _SIZE_RE.fullmatch(s)
    if not m:
        raise ValueError("is not a size (bytes, or a K/M/G/T suffix: 512M, 1.5G)")
    whole, fraction = m.group(1).lstrip("0"), (m.group(2) or "").rstrip("0")
    if _too_large(whole, maximum):
        raise ValueError(f"is too large: at most {maximum} bytes")
    if len(fraction) > _MAX_FRACTION:
        raise ValueError("is not a whole number of bytes: round it")
    power = _UNITS.index(m.group(3).upper()) + 1 if m.group(3) else 0
    scaled = int((whole or "0") + fraction) * 1024 ** power  # in units of 10^-len(fraction)
    value, rest = divmod(scaled, 10 ** len(fraction))
    if value > maximum:
        raise ValueError(f"is too large: at most {maximum} bytes")
    if rest:
        exact = f" ({value}.{rest:0{len(fraction)}d})" if power else ""
        raise ValueError(f"is not a whole number of bytes{exact}: round it")
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
