"""The ring buffer of events, printed one line each as they arrive."""

from __future__ import annotations

import ctypes
import errno
from ctypes import sizeof
from typing import Callable, TextIO

from oomkiller import _libbpf, abi, events, journal
from oomkiller._libbpf import RingBuffer


class EventStream:
    """Owns the ring buffer on the shared `events` map: it is its own mmap of
    the map, so it outlives the generation whose fd made it."""

    def __init__(self, lib: ctypes.CDLL, events_fd: int, out: TextIO, as_json: bool,
                 journal_out: bool, warn: Callable[[str], None]) -> None:
        self._lib = lib
        self._out = out
        self.as_json = as_json
        self._journal_out = journal_out
        self._warn = warn
        self._offset_ns = events.boot_to_realtime_offset_ns()
        self.closed_output = False  # our stdout's reader went away
        self._cb = _libbpf.RingBufferSampleFn(self._on_event)  # kept alive here
        self._rb = lib.ring_buffer__new(events_fd, self._cb, None, None)

    def _on_event(self, ctx: int, data: int, size: int) -> int:
        # Runs inside ring_buffer__poll(): exceptions can't propagate through C.
        try:
            if size < sizeof(abi.OomkEvent):
                return 0
            ev = abi.OomkEvent.from_buffer_copy(ctypes.string_at(data, sizeof(abi.OomkEvent)))
            priority = journal.EVENT_PRIORITY.get(events.event_name(ev.kind), journal.NOTICE)
            self._out.write(journal.prefix(priority, self._journal_out)
                            + events.format_event(ev, self._offset_ns, self.as_json) + "\n")
            self._out.flush()
        except BrokenPipeError:
            self.closed_output = True
        except Exception as e:  # noqa: BLE001
            self._warn(f"cannot print event: {e}")
        return 0

    def poll(self, wait_ms: int) -> None:
        """Print what arrives within wait_ms; a signal ends the wait early."""
        ret = self._lib.ring_buffer__poll(self._rb, wait_ms)
        if ret < 0 and ret != -errno.EINTR:
            _libbpf.raise_errno(-ret, "ring_buffer__poll")

    def drain(self) -> None:
        """Print the events already in flight (at stop)."""
        if self._rb and not self.closed_output:
            self._lib.ring_buffer__consume(self._rb)

    def close(self) -> None:
        if self._rb:
            self._lib.ring_buffer__free(self._rb)
            self._rb = RingBuffer()
