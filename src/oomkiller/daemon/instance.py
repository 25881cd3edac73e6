"""One killer per machine, and what it publishes for `oomkiller status`.

- The lock: an exclusive flock on LOCK_PATH, held (fd open) for the killer's
  life, with its pid written in. The kernel drops it when the process dies,
  however it dies, so a crash never leaves a stale lock.
- The pins: the maps `procs`, `stats` (.bss) and `config` (.rodata) under
  PIN_DIR on bpffs, and STATE_PATH (JSON). Maps only: a pinned program or
  link would stay attached after the loader dies. Removed at exit; after a
  SIGKILL they stay (maps, nothing runs) until the next start cleans them.

The lock and state live in /run/oomkiller/: the unit's RuntimeDirectory,
the one place under /run that ProtectSystem=strict leaves writable.
"""

from __future__ import annotations

import ctypes
import fcntl
import json
import os
from typing import Any, Optional

from oomkiller.bpf import _libbpf

RUN_DIR = "/run/oomkiller"
LOCK_PATH = f"{RUN_DIR}/lock"
STATE_PATH = f"{RUN_DIR}/state.json"
BPFFS = "/sys/fs/bpf"
PIN_DIR = f"{BPFFS}/oomkiller"
PINS = ("procs", "stats", "config")


class AlreadyRunning(Exception):
    def __init__(self, pid: Optional[int]) -> None:
        super().__init__(pid)
        self.pid = pid


class PinError(Exception):
    """Pinning failed; the killer runs on, but `status` cannot see it."""


def _read_pid(fd: int) -> Optional[int]:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        return int(text) if text.isdigit() else None
    except OSError:
        return None


class InstanceLock:
    """The single-instance lock. acquire() raises AlreadyRunning(pid)."""

    def __init__(self, path: str = LOCK_PATH) -> None:
        self.path = path
        self.fd = -1

    def acquire(self) -> None:
        os.makedirs(os.path.dirname(self.path), mode=0o700, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = _read_pid(fd)
            os.close(fd)
            raise AlreadyRunning(pid) from None
        except BaseException:
            os.close(fd)
            raise
        self.fd = fd
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)

    def release(self) -> None:
        # The file stays: unlinking a lock file lets a newcomer lock a fresh
        # inode while another waits on the old one.
        if self.fd >= 0:
            try:
                os.ftruncate(self.fd, 0)
            except OSError:
                pass
            os.close(self.fd)
            self.fd = -1


def running_pid(path: str = LOCK_PATH) -> tuple[bool, Optional[int]]:
    """(a killer holds the lock, its pid). Tries a shared lock for an instant."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False, None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True, _read_pid(fd)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False, None
    finally:
        os.close(fd)


# -- bpffs and the pins ------------------------------------------------------

def bpffs_mounted(mounts: str = "/proc/mounts") -> bool:
    try:
        with open(mounts, encoding="utf-8", errors="replace") as f:
            return any(len(p) >= 3 and p[1] == BPFFS and p[2] == "bpf"
                       for p in (line.split() for line in f))
    except OSError:
        return False


def ensure_bpffs() -> None:
    """Mount bpffs at /sys/fs/bpf if nothing has (systemd always does)."""
    if bpffs_mounted():
        return
    libc = _libbpf.libc()
    if libc.mount(b"bpf", BPFFS.encode(), b"bpf", 0, None) != 0:
        err = ctypes.get_errno()
        raise PinError(f"cannot mount bpffs at {BPFFS}: {os.strerror(err)}")


def remove_stale() -> None:
    """What a killer that died without cleaning up left; call with the lock held."""
    remove_pins()
    remove_state()


def remove_pins() -> None:
    try:
        names = os.listdir(PIN_DIR)
    except (FileNotFoundError, NotADirectoryError):
        return
    for name in names:
        try:
            os.unlink(os.path.join(PIN_DIR, name))
        except FileNotFoundError:
            pass
    try:
        os.rmdir(PIN_DIR)
    except FileNotFoundError:
        pass


def remove_state() -> None:
    for path in (STATE_PATH, STATE_PATH + ".tmp"):
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


class Pins:
    """The pinned maps of one killer. pin() may raise PinError; remove() never does."""

    def __init__(self, lib: Any) -> None:
        self.lib = lib
        self.active = False

    def create(self) -> None:
        ensure_bpffs()
        remove_pins()
        try:
            os.mkdir(PIN_DIR, 0o700)
        except OSError as e:
            raise PinError(f"cannot create {PIN_DIR}: {e.strerror}") from None
        self.active = True

    def pin(self, name: str, fd: int) -> None:
        """Pin fd as NAME, replacing an older pin atomically (bpffs renames)."""
        path = os.path.join(PIN_DIR, name)
        tmp = path + "-new"  # bpffs refuses names with a dot (EPERM)
        try:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            self.lib.bpf_obj_pin(fd, tmp.encode())
            os.rename(tmp, path)
        except OSError as e:
            raise PinError(f"cannot pin {path}: {e.strerror}") from None

    def remove(self) -> None:
        if self.active:
            self.active = False
            try:
                remove_pins()
            except OSError:
                pass


def write_state(state: dict) -> None:
    """STATE_PATH, replaced atomically so `status` never reads half of it."""
    os.makedirs(RUN_DIR, mode=0o700, exist_ok=True)
    tmp = STATE_PATH + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(state, f, indent=1)
        f.write("\n")
    os.rename(tmp, STATE_PATH)


def read_state() -> dict:
    """The running killer's state; OSError or ValueError if absent or bad."""
    with open(STATE_PATH, encoding="utf-8") as f:
        state = json.load(f)
    if not isinstance(state, dict):
        raise ValueError("not a JSON object")
    return state
