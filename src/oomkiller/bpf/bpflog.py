"""libbpf's own log: to stderr under -v, else kept (last lines) for error messages."""

from __future__ import annotations

import collections
import sys
from typing import TextIO

from oomkiller.bpf import _libbpf

KEEP_LINES = 50
# A failed program load prints the whole verifier log as one message; under
# -v show only its end, which is where the verifier says what it rejected.
VERBOSE_MAX_LINES = 50


class LibbpfLog:
    """Owns the C print callback (ctypes frees it if nothing holds a reference)."""

    def __init__(self, verbose: int = 0, stream: TextIO | None = None) -> None:
        self.verbose = verbose
        self.stream = stream
        self.lines: collections.deque[str] = collections.deque(maxlen=KEEP_LINES)
        self._callback = _libbpf.PrintFn(self._print)
        self._installed = False

    def install(self) -> None:
        _libbpf.libbpf().libbpf_set_print(self._callback)
        self._installed = True

    def _print(self, level: int, fmt: bytes, ap: int) -> int:
        # Runs inside libbpf: must never raise.
        try:
            text = _libbpf.format_va_list(fmt, ap)
            self.add(level, text)
        except BaseException:  # noqa: BLE001 - lost in C anyway; a signal's
            pass                # KeyboardInterrupt is noticed by its flag instead
        return 0

    def add(self, level: int, text: str) -> None:
        lines = text.rstrip("\n").split("\n")
        self.lines.extend(lines)
        show = self.verbose >= 2 or (self.verbose == 1 and level <= _libbpf.LIBBPF_INFO)
        if show:
            out = self.stream or sys.stderr
            if len(lines) > VERBOSE_MAX_LINES:
                out.write(f"libbpf: ... ({len(lines) - VERBOSE_MAX_LINES} lines not shown)\n")
                lines = lines[-VERBOSE_MAX_LINES:]
            out.write("".join(f"{line}\n" for line in lines))  # libbpf adds "libbpf: "
            out.flush()

    def tail(self, n: int = 20) -> list[str]:
        return list(self.lines)[-n:]
