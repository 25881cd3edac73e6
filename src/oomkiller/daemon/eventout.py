"""The ring buffer of events, printed one line each as they arrive, or, when
systemd connected our stdout to the journal, sent as structured entries."""

from __future__ import annotations

import ctypes
import errno
from collections import Counter
from ctypes import sizeof
from typing import Callable, Optional, TextIO

from oomkiller.bpf import _libbpf, abi
from oomkiller.bpf._libbpf import RingBuffer
from oomkiller.outputs import events, journal
from oomkiller.outputs.journald import JournalSender, event_fields


class EventStream:
    """Owns the ring buffer on the shared `events` map: it is its own mmap of
    the map, so it outlives the generation whose fd made it."""

    def __init__(self, lib: ctypes.CDLL, events_fd: int, out: TextIO, as_json: bool,
                 journal_out: bool, warn: Callable[[str], None],
                 native: Optional[JournalSender] = None,
                 policy_name: Callable[[int, int], str] = lambda gen, index: "default") -> None:
        self._lib = lib
        self._out = out
        self.as_json = as_json
        self._journal_out = journal_out
        self._warn = warn
        self._native = native  # journald's socket, used only when journal_out
        self._policy_name = policy_name  # (generation, index) -> the policy's name
        # (event, policy, rule) -> events seen: the metrics' per-policy totals.
        self.counts: Counter[tuple[str, str, str]] = Counter()
        self._offset_ns = events.boot_to_realtime_offset_ns()
        self.closed_output = False  # our stdout's reader went away
        self.held = False  # an EV_HOLD came: a target waits for libprobes
        self.killed = False  # an EV_KILL came: a tree's other members may be due
        self._cb = _libbpf.RingBufferSampleFn(self._on_event)  # kept alive here
        self._rb = lib.ring_buffer__new(events_fd, self._cb, None, None)

    def _on_event(self, ctx: int, data: int, size: int) -> int:
        # Runs inside ring_buffer__poll(): exceptions can't propagate through C.
        try:
            if size < sizeof(abi.OomkEvent):
                return 0
            ev = abi.OomkEvent.from_buffer_copy(ctypes.string_at(data, sizeof(abi.OomkEvent)))
            if ev.kind == abi.EV_HOLD:  # a wakeup, not a line
                self.held = True
                return 0
            if ev.kind == abi.EV_KILL:
                self.killed = True
            policy = self._policy_name(ev.generation, ev.policy)
            self.counts[(events.event_name(ev.kind), policy, events.rule_name(ev.rule))] += 1
            line = events.format_event(ev, self._offset_ns, self.as_json, policy)
            if self._journal_out and self._native is not None:
                d = events.event_dict(ev, self._offset_ns, policy)
                if self._native.send(event_fields(d, line, bytes(ev.comm))):
                    return 0
            priority = journal.EVENT_PRIORITY.get(events.event_name(ev.kind), journal.NOTICE)
            self._out.write(journal.prefix(priority, self._journal_out) + line + "\n")
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
        if self._native is not None:
            self._native.close()
            self._native = None
        if self._rb:
            self._lib.ring_buffer__free(self._rb)
            self._rb = RingBuffer()
