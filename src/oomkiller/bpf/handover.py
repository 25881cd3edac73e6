"""The sweep, and the deferred kills the loader sends for BPF before Linux 6.13.

After each memory sample the loader runs the `sweep` syscall program. From
Linux 6.13 it kills every condemned target itself (bpf_send_signal_task).
Before, no BPF program can signal a process it does not run in, so the sweep
only lists the tgids due and the loader carries out each verdict:

1. pidfd_open(tgid): from here on the fd names whichever process had that
   tgid at this moment;
2. read the `hand_over` task iterator on that tgid: BPF checks the process
   (condemned, not yet killed, the gate open, its leader's start time, a
   target by name, not already exiting) and claims the kill; a record out
   means "send". A process it accepts was alive before step 1 and still is,
   so it is the one the pidfd names: a reused PID is never signalled;
3. pidfd_send_signal(SIGKILL);
4. run `kill_sent` with the record and the result: BPF reports the kill, or
   un-claims it for the next sweep.

The loader decides nothing: it signals only what step 2 handed it.
"""

from __future__ import annotations

import ctypes
import os
import signal
from ctypes import byref, sizeof
from typing import TYPE_CHECKING, Callable

from oomkiller.bpf import _libbpf, abi

if TYPE_CHECKING:
    from oomkiller.bpf.generation import Generation

# A burst of condemned processes is handed over OOMK_DUE_MAX at a time; the
# sweep runs again at once while it says more are due, this many times.
MAX_ROUNDS = 16


def sweep(gen: "Generation", cfg_flags: int, warn: Callable[[str], None]) -> None:
    """One sweep; raises OSError if the sweep program could not run."""
    if cfg_flags & abi.CF_SIGNAL_TASK:
        gen.run("sweep", abi.OomkDue())
        return
    for _ in range(MAX_ROUNDS):
        due = abi.OomkDue()
        gen.run("sweep", due)
        for tgid in due.tgids[:min(due.n, abi.OOMK_DUE_MAX)]:
            _send(gen, tgid, warn)
        if not due.more:
            return


def _send(gen: "Generation", tgid: int, warn: Callable[[str], None]) -> None:
    try:
        pidfd = os.pidfd_open(tgid)
    except OSError:
        return  # gone: its exit drops the entry
    try:
        for claim in _claims(gen, tgid, warn):
            try:
                signal.pidfd_send_signal(pidfd, signal.SIGKILL)
                claim.err = 0
            except OSError as e:
                claim.err = -(e.errno or 1)
            gen.run("kill_sent", claim)
    finally:
        os.close(pidfd)


def _claims(gen: "Generation", tgid: int,
            warn: Callable[[str], None]) -> list[abi.OomkHandover]:
    """Read hand_over on process tgid: the kills it claimed (one at most)."""
    lib = gen.lib
    info = _libbpf.BpfIterTaskInfo(pid=tgid)
    opts = _libbpf.BpfIterAttachOpts(sz=sizeof(_libbpf.BpfIterAttachOpts),
                                     link_info=ctypes.addressof(info),
                                     link_info_len=sizeof(info))
    data = b""
    try:
        link = lib.bpf_program__attach_iter(gen.runs["hand_over"], byref(opts))
    except OSError as e:
        warn(f"deferred kill of {tgid}: the task iterator did not attach: {e.strerror}")
        return []
    try:
        fd = lib.bpf_iter_create(lib.bpf_link__fd(link))
        try:
            while chunk := os.read(fd, 4096):
                data += chunk
        finally:
            os.close(fd)
    except OSError as e:
        warn(f"deferred kill of {tgid}: the task iterator could not be read: {e.strerror}")
    finally:
        lib.bpf_link__destroy(link)
    size = sizeof(abi.OomkHandover)
    return [abi.OomkHandover.from_buffer_copy(data, at)
            for at in range(0, len(data) - size + 1, size)]
