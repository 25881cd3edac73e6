"""What is running while the bench measures: nothing (None), the floor
programs, oomkiller, the bpftrace peer or the /proc poller peer. Each is a
state with start() and stop(); every process it starts is tracked by KIDS."""
from __future__ import annotations

import os
import signal
import subprocess
import time
from typing import Optional

from harness import KIDS, Killer, cpu_seconds, drain, read_line
from limits import HIGH_LIMITS, LIMITS, policy_bt_args
from paths import BENCH, BUILD, PYTHON
from oomkiller.bpf import _libbpf
from oomkiller.bpf.generation import struct_layout

TRACEFS = ("mountpoint -q /sys/kernel/tracing || mount -t tracefs nodev /sys/kernel/tracing"
           " || exit 97;")


class Floor:
    """Empty programs on the killer's hooks (bench/floor.bpf.c), held by bench/floor.py."""
    name = "floor"

    # The object also holds the VM bench's fexit and kretprobe floors,
    # which this machine's kernel refuses: name what to load.
    def __init__(self, only: str = "floor_sys_enter,floor_sys_exit,floor_rand") -> None:
        self.only = ["--only", only]

    def start(self) -> None:
        self.p = KIDS.start([PYTHON, str(BENCH / "floor.py"), str(BUILD / "floor.bpf.o")]
                            + self.only,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        read_line(self.p, self.p.stdout, "floor: ready", 30)

    def stop(self) -> None:
        self.p.stdin.close()
        self.p.stdin = None
        KIDS.stop(self.p)


class Oomkiller:
    """./oomkiller ARGS: a fresh harness Killer each start(), so that one
    condition can run in every round. `with Oomkiller(...) as k` gives the
    harness Killer (events, status, wait_samples) for one measurement."""
    name = "oomkiller"

    def __init__(self, *args: str, json_events: bool = False, ready_timeout: float = 60.0,
                 stop_timeout: float = 15.0) -> None:
        self.args = args
        self.kw = {"json_events": json_events, "ready_timeout": ready_timeout,
                   "stop_timeout": stop_timeout}
        self.killer: Optional[Killer] = None

    def start(self) -> Killer:
        self.killer = Killer(*self.args, **self.kw)
        self.killer.start()
        return self.killer

    def stop(self) -> None:
        if self.killer is not None:
            self.killer.stop()

    def __enter__(self) -> Killer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def task_comm_offset() -> int:
    """offsetof(struct task_struct, comm) on the running kernel, from its BTF
    through the package's libbpf binding (policy.bt's $7)."""
    lib = _libbpf.libbpf()
    btf = lib.btf__load_vmlinux_btf()
    try:
        layout = struct_layout(lib, btf, "task_struct")
    finally:
        lib.btf__free(btf)
    offsets = dict(layout[1]) if layout else {}
    if "comm" not in offsets:
        raise RuntimeError("no task_struct.comm in the kernel's BTF")
    return offsets["comm"]


def bpftrace_ready(notes: list[str]) -> Optional[str]:
    """bpftrace's version if it can run the policy here, else None (and a note why)."""
    if not any(os.access(os.path.join(d, "bpftrace"), os.X_OK)
               for d in os.environ.get("PATH", "/usr/bin").split(":")):
        notes.append("bpftrace is not installed (`apt-get install bpftrace`): peer (ii) skipped")
        return None
    probe = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "sh", "-c",
         TRACEFS + " exec timeout 60 bpftrace --unsafe -e "
         "'tracepoint:syscalls:sys_enter_getppid /pid == 1/ { signal(\"SIGKILL\"); } "
         "BEGIN { printf(\"ok\\n\"); exit(); }'"],
        capture_output=True, text=True)
    if "ok" not in probe.stdout:
        err = " ".join(ln for ln in probe.stderr.splitlines() if "RLIMIT_MEMLOCK" not in ln)
        notes.append(f"bpftrace cannot run the policy here: {err.strip() or probe.returncode}")
        return None
    return subprocess.run(["bpftrace", "--version"], capture_output=True,
                          text=True).stdout.strip()


class Bpftrace:
    """bench/policy.bt under Debian's bpftrace, in a private mount namespace
    with tracefs mounted (bpftrace 0.17 finds tracepoints only through it,
    and it need not be mounted on the host). `high` gives limits nothing
    reaches, for the overhead rounds; else the killer's defaults."""
    name = "bpftrace"

    def __init__(self, comm_off: int, high: bool = False) -> None:
        self.limits = policy_bt_args(HIGH_LIMITS if high else LIMITS, comm_off)
        self.lines: list[str] = []

    def start(self) -> None:
        script = TRACEFS + " exec bpftrace --unsafe \"$@\""
        argv = ["unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh",
                str(BENCH / "policy.bt")] + [str(v) for v in self.limits]
        self.p = KIDS.start(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        read_line(self.p, self.p.stdout, "policy.bt: ready", 120)
        self.lines = []
        drain(self.p.stdout, self.lines)
        drain(self.p.stderr, [])

    def stop(self) -> None:
        KIDS.stop(self.p, signal.SIGINT)


class Poller:
    """bench/poller.c: an earlyoom-style peer reading /proc every 100 ms,
    with the killer's default limits for what /proc shows."""
    name = "procpoller"

    def start(self) -> None:
        self.p = KIDS.start([str(BUILD / "procpoller"), "-i", "100",
                             "-f", str(LIMITS["fds"]), "-t", str(LIMITS["threads"]),
                             "-w", str(LIMITS["writes"]), "-r", str(LIMITS["read-bytes"])],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        read_line(self.p, self.p.stderr, "procpoller: ready", 10)
        self.t0 = time.monotonic()
        self.c0 = cpu_seconds(self.p.pid)
        self.lines: list[str] = []
        drain(self.p.stdout, self.lines)

    def stop(self) -> None:
        self.cpu_pct = 100 * (cpu_seconds(self.p.pid) - self.c0) / (time.monotonic() - self.t0)
        KIDS.stop(self.p)
