"""A policy's selectors, resolved once when the config is read: what BPF
compares a process against (policy.Policy; the loader copies it in).

  exe     the file's (kernel s_dev, inode): what BPF reads from the mm's exe_file
  cgroup  a cgroup v2 path from the cgroup2 mount's root, "/a/b" ("/": root)
  unit    a systemd unit's cgroup path; it need not exist yet (a unit started
          later is matched once its cgroup appears)
  user    a uid; a number need not have a passwd entry

Each function raises ValueError with `what is wrong: what to do`; the caller
puts `PATH:LINE: KEY: ` in front.
"""

from __future__ import annotations

import os
import pwd
import re
import stat
import subprocess
from typing import Callable, Optional

from oomkiller.bpf import abi

MOUNTINFO = "/proc/self/mountinfo"
SYSTEMD_RUNNING = "/run/systemd/system"  # sd_booted(3): systemd is the system manager
CGROUP_PATH_MAX = abi.OOMK_PATH_MAX - 1  # bytes; BPF keeps it NUL-terminated
UID_MAX = 4294967294                     # (uid_t)-1 means "no uid" to the kernel
SYSTEMCTL_TIMEOUT = 10.0

# Units that have a cgroup, so processes; a .target, .timer, .path,
# .automount or .device never holds one.
_UNIT_TYPES_WITH_CGROUP = ("service", "scope", "slice", "socket", "mount", "swap")
_UNIT_TYPES = _UNIT_TYPES_WITH_CGROUP + ("target", "timer", "path", "automount", "device")
_UNIT = re.compile(r"[A-Za-z0-9:_.\\@-]+\.(" + "|".join(_UNIT_TYPES) + r")")
UNIT_NAME_MAX = 255  # systemd's UNIT_NAME_MAX - 1


# -- exe ---------------------------------------------------------------------------

def kernel_dev(st_dev: int) -> int:
    """A device number as the kernel keeps it in s_dev (MKDEV: major << 20 | minor),
    not as stat(2) encodes it for user space."""
    return os.major(st_dev) << 20 | os.minor(st_dev)


# File systems where the file a process runs is not the inode stat(2) names:
# overlayfs hands the kernel its layer's file (a container's root; the VM
# lane's /tmp: an exe policy there matched nothing), FUSE may too.
FOREIGN_FS = ("overlay", "fuse")


def fs_type(path: str, mountinfo: str = MOUNTINFO) -> Optional[str]:
    """The file system type of the mount that holds path (symlinks followed)."""
    real = os.path.realpath(path)
    best, kind = "", None
    try:
        with open(mountinfo) as f:
            for line in f:
                head, sep, tail = line.partition(" - ")
                if not sep:
                    continue
                point = _unescape(head.split(" ")[4])
                inside = real == point or real.startswith(point.rstrip("/") + "/")
                if inside and len(point) >= len(best):
                    best, kind = point, tail.split(" ", 1)[0]
    except OSError:
        return None
    return kind


def foreign(path: str) -> Optional[str]:
    """The file system type if path is on one where BPF sees another inode."""
    kind = fs_type(path)
    if kind and (kind in FOREIGN_FS or kind.startswith("fuse.")):
        return kind
    return None


def native_dir(candidates: tuple[str, ...] = ("/dev/shm", "/run", "/tmp")) -> Optional[str]:
    """The first of candidates that is a writable directory on a file system
    where an exe selector can work (for selftest's and the tests' copies)."""
    for d in candidates:
        if os.path.isdir(d) and os.access(d, os.W_OK | os.X_OK) and not foreign(d):
            return d
    return None


def resolve_exe(path: str) -> tuple[int, int]:
    """(kernel s_dev, inode) of the regular file at path, symlinks followed."""
    if not os.path.isabs(path):
        raise ValueError(f"not an absolute path: {path!r}: give the program's full path")
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise ValueError(f"no such file: {path!r}: give the program's full path") from None
    except OSError as e:
        raise ValueError(f"cannot stat {path!r}: {e.strerror}") from None
    if not stat.S_ISREG(st.st_mode):
        raise ValueError(f"not a regular file: {path!r}: name the program itself")
    kind = foreign(path)
    if kind:
        raise ValueError(f"{path!r} is on {kind}, where the kernel runs another inode than "
                         "this path names: select it by name, cgroup or unit instead")
    return kernel_dev(st.st_dev), st.st_ino


# -- cgroup ------------------------------------------------------------------------

def _unescape(field: str) -> str:
    """A mountinfo path: blanks, tabs, newlines and backslashes come as \\ooo."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def cgroup2_mount(mountinfo: str = MOUNTINFO) -> Optional[str]:
    """Where the cgroup2 file system is mounted: /sys/fs/cgroup if it is there
    (also under a hybrid layout's /sys/fs/cgroup/unified), else the first one."""
    found = []
    try:
        with open(mountinfo) as f:
            for line in f:
                head, sep, tail = line.partition(" - ")
                if sep and tail.split(" ", 1)[0] == "cgroup2":
                    found.append(_unescape(head.split(" ")[4]))
    except OSError:
        return None
    for preferred in ("/sys/fs/cgroup", "/sys/fs/cgroup/unified"):
        if preferred in found:
            return preferred
    return found[0] if found else None


def normalize_cgroup(text: str, mount: str) -> str:
    """"/a/b", "a/b", "/a/b/" or MOUNT/a/b as "/a/b"; the root is "/"."""
    if "\0" in text:
        raise ValueError("the path contains NUL")
    path = text
    mount = mount.rstrip("/") or "/"
    if path == mount or path.startswith(mount + "/"):
        path = path[len(mount):]
    parts = [p for p in path.split("/") if p and p != "."]
    if ".." in parts:
        raise ValueError(f"'..' in {text!r}: write the path from the cgroup root")
    return check_cgroup_length("/" + "/".join(parts))


def check_cgroup_length(path: str) -> str:
    if len(os.fsencode(path)) > CGROUP_PATH_MAX:
        raise ValueError(f"the cgroup path {path!r} is longer than {CGROUP_PATH_MAX} bytes: "
                         "select a shorter one (a parent cgroup, or add a name selector)")
    return path


def resolve_cgroup(text: str, mountinfo: str = MOUNTINFO) -> str:
    """The normalized path of an existing cgroup v2 directory."""
    mount = cgroup2_mount(mountinfo)
    if mount is None:
        raise ValueError("no cgroup2 file system is mounted: mount one at /sys/fs/cgroup")
    path = normalize_cgroup(text, mount)
    if not os.path.isdir(mount.rstrip("/") + path):
        raise ValueError(f"no such cgroup: {path!r} (under {mount}): "
                         "create it, or check the path")
    return path


# -- unit --------------------------------------------------------------------------

def systemd_running(marker: str = SYSTEMD_RUNNING) -> bool:
    return os.path.isdir(marker)


def check_unit_name(unit: str) -> None:
    if len(unit) > UNIT_NAME_MAX or not _UNIT.fullmatch(unit):
        raise ValueError(f"not a unit name: {unit!r}: "
                         "write it in full, such as ci-runner.service")
    kind = unit.rsplit(".", 1)[1]
    if kind not in _UNIT_TYPES_WITH_CGROUP:
        raise ValueError(f"a .{kind} unit runs no processes: name a "
                         + ", ".join("." + t for t in _UNIT_TYPES_WITH_CGROUP) + " unit")
    if "@." in unit:
        raise ValueError(f"{unit!r} is a template: name an instance, such as "
                         f"{unit.replace('@.', '@1.', 1)!r}")


def slice_path(slice_unit: str) -> str:
    """The cgroup path systemd gives a slice: "a-b.slice" is /a.slice/a-b.slice,
    "-.slice" the root (systemd's unit_name_to_prefix and slice nesting)."""
    if not slice_unit.endswith(".slice"):
        raise ValueError(f"not a slice: {slice_unit!r}")
    prefix = slice_unit[:-len(".slice")]
    if prefix in ("", "-"):
        return "/"
    parts = prefix.split("-")
    return "".join("/" + "-".join(parts[:i + 1]) + ".slice" for i in range(len(parts)))


def unit_cgroup(unit: str, control_group: str = "", slice_unit: str = "") -> str:
    """A unit's cgroup path from what `systemctl show` says: its ControlGroup
    if it has one now (running), else its Slice's path and the unit's name,
    else systemd's default, system.slice. A slice is its own path."""
    if control_group:
        return control_group
    if unit.endswith(".slice"):
        return slice_path(unit)
    parent = slice_path(slice_unit) if slice_unit.endswith(".slice") else "/system.slice"
    return parent.rstrip("/") + "/" + unit


def _systemctl_show(unit: str, prop: str) -> str:
    try:
        res = subprocess.run(["systemctl", "show", "-P", prop, "--", unit],
                             capture_output=True, text=True, timeout=SYSTEMCTL_TIMEOUT,
                             stdin=subprocess.DEVNULL)
    except (OSError, subprocess.SubprocessError):
        return ""
    return res.stdout.strip() if res.returncode == 0 else ""


def resolve_unit(unit: str, running: Callable[[], bool] = systemd_running,
                 show: Callable[[str, str], str] = _systemctl_show) -> str:
    """The cgroup path of a systemd unit."""
    check_unit_name(unit)
    if not running():
        raise ValueError(f"systemd is not running ({SYSTEMD_RUNNING} is missing), so "
                         f"{unit!r} is no unit: select by cgroup instead")
    control_group = show(unit, "ControlGroup")
    return check_cgroup_length(unit_cgroup(
        unit, control_group,
        "" if control_group or unit.endswith(".slice") else show(unit, "Slice")))


# -- user --------------------------------------------------------------------------

def resolve_user(text: str) -> int:
    """A user name's uid, or a decimal uid (which need not have a passwd entry)."""
    if text.isascii() and text.isdigit():
        uid = int(text)
        if uid > UID_MAX:
            raise ValueError(f"uid {text} is too large: at most {UID_MAX}")
        return uid
    try:
        return pwd.getpwnam(text).pw_uid
    except (KeyError, ValueError):  # ValueError: a NUL in the name
        raise ValueError(f"no such user: {text!r}: create it, or give a uid") from None
