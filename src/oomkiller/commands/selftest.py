"""`oomkiller selftest`: prove on the running kernel that each rule holds.

It starts a killer of its own (the same program, a private target name, small
test-only limits, the gate always open) and, for each rule, runs the built-in
workload (selfwork.py) three times: one unit under the limit (must live), at
the limit (must die by SIGKILL, with a kill event for that rule at exactly
the limit), and at the limit under a name that is not a target (must live).
It prints one row per rule, then one per selector kind (selftest_policies.py:
a private policy each, in the same killer), and exits 0 only if every row
holds.

Every process it starts is its child and is killed on the way out, also on
SIGINT or SIGTERM. With another killer running it says so and exits 1: two
killers at once would fight over the same targets.
"""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path
from typing import Callable, Optional, Sequence

from oomkiller.commands import selftest_policies
from oomkiller.commands.selfwork import WORKLOAD
from oomkiller.config.rules import RULES
from oomkiller.config.settings import SELFTEST_PID_ENV
from oomkiller.daemon import instance
from oomkiller.messages import EXIT_FAILURE, EXIT_OK, Parser, fail
from oomkiller.privileges import effective_caps, has_bpf_privileges

# Small limits, so that each row takes a moment. read-bytes leaves room for
# what Python reads as it starts (~2 MiB): the rand row's process is a target
# from its exec on (Runs.executable).
LIMITS = {"fds": 20, "writes": 20, "read-bytes": 16 * 1024 * 1024, "threads": 20, "rand": 20,
          "tcp-packets": 50}
SOURCE = {"fds": "sys", "writes": "sys", "read-bytes": "sys", "tcp-packets": "tcp",
          "rand": "rand", "threads": "fork"}
READY_TIMEOUT = 600.0  # ~90 fexit programs load slowly on a slow machine
RUN_TIMEOUT = 60.0
NON_TARGET = "selftest-other"


def killer_command() -> list[str]:
    """This very program: the zipapp we run from, or the package."""
    if zipfile.is_zipfile(sys.argv[0]):
        return [sys.executable, os.path.abspath(sys.argv[0])]
    return [sys.executable, "-m", "oomkiller"]


class Killer:
    """Our own killer, its ready line and its events (one JSON object a line)."""

    def __init__(self, name: str, config: str = "/dev/null") -> None:
        args = [f"--name={name}", "--min-used=0", f"--config={config}", "--json"]
        args += [f"--{r.option}={LIMITS[r.name]}" for r in RULES]
        env = dict(os.environ)
        env[SELFTEST_PID_ENV] = str(os.getpid())  # never a target of its own killer
        if not zipfile.is_zipfile(sys.argv[0]):
            env["PYTHONPATH"] = str(Path(__file__).resolve().parents[2])  # src/
        self.proc = subprocess.Popen(killer_command() + args, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     env=env, start_new_session=True)
        self.events: list[dict] = []
        self.stderr: list[str] = []
        self.ready: Optional[str] = None
        self._cond = threading.Condition()
        for target, stream in ((self._read_events, self.proc.stdout),
                               (self._read_stderr, self.proc.stderr)):
            threading.Thread(target=target, args=(stream,), daemon=True).start()

    def _read_events(self, stream) -> None:
        for line in stream:
            try:
                ev = json.loads(line)
            except ValueError:
                continue
            with self._cond:
                self.events.append(ev)
                self._cond.notify_all()

    def _read_stderr(self, stream) -> None:
        for line in stream:
            with self._cond:
                self.stderr.append(line.rstrip("\n"))
                if line.startswith("oomkiller: ready") and self.ready is None:
                    self.ready = line
                self._cond.notify_all()
        # Our end of its stderr closes at its exit, a moment before it can
        # be reaped: reap it, or wait_ready() could see it still running
        # and wait for a notify that never comes.
        self.proc.wait()
        with self._cond:
            self._cond.notify_all()

    def wait_ready(self) -> bool:
        with self._cond:
            self._cond.wait_for(lambda: self.ready is not None or self.proc.poll() is not None,
                                READY_TIMEOUT)
            return self.ready is not None

    def wait_event(self, pid: int, timeout: float = 5.0) -> Optional[dict]:
        with self._cond:
            self._cond.wait_for(lambda: any(e.get("pid") == pid for e in self.events), timeout)
            return next((e for e in self.events if e.get("pid") == pid), None)

    def wait_events(self, match: Callable[[dict], bool], count: int = 1,
                    timeout: float = 5.0) -> list[dict]:
        """The events match() accepts, once there are count of them (or the timeout)."""
        with self._cond:
            self._cond.wait_for(lambda: sum(map(match, self.events)) >= count, timeout)
            return [e for e in self.events if match(e)]

    def families(self) -> dict[str, str]:
        text = (self.ready or "").split("families ", 1)[-1].split(";", 1)[0]
        return dict(f.split("=", 1) for f in text.split() if "=" in f)

    def kernel_notes(self) -> list[str]:
        """The ready line's `; kernel: ...` parts (families.Plan.kernel_notes)."""
        return [part.split(": ", 1)[1] for part in (self.ready or "").strip().split("; ")
                if part.startswith("kernel: ")]

    def rules_off(self) -> dict[str, str]:
        """Rules this kernel can't enforce, and why."""
        off = {}
        for note in self.kernel_notes():
            rule, sep, why = note.partition(" off: ")
            if sep and rule in LIMITS:
                off[rule] = why
        return off

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class Sink:
    """A loopback TCP listener that drains whatever the tcp-packets workloads send."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._drain, args=(conn,), daemon=True).start()

    @staticmethod
    def _drain(conn: socket.socket) -> None:
        with conn:
            while conn.recv(65536):
                pass

    def close(self) -> None:
        self.sock.close()


class Runs:
    """Every workload started, so that all are killed on the way out."""

    def __init__(self, tmp: str, port: int) -> None:
        self.tmp, self.port, self.procs = tmp, port, []

    def executable(self, name: str, rule: str) -> str:
        """Python, or for rand a symlink to it called `name`: exec names the
        process after the file, so it is a target before it maps libc and
        BPF sees that mapping. (A process renamed into a target later is
        counted only in libraries BPF saw it map, or that the killer maps
        itself and could key: not the case where libc lies on an overlay,
        as in the VM lane's guests; OPERATIONS lists it.)"""
        if rule != "rand":
            return sys.executable
        path = os.path.join(self.tmp, name)
        if not os.path.lexists(path):
            os.symlink(os.path.realpath(sys.executable), path)
        return path

    def run(self, name: str, rule: str, count: int, opts: Sequence[str] = (),
            exe: Optional[str] = None) -> tuple[int, Optional[float], int]:
        """(returncode, µs from the last unit's start to the reap, pid). opts:
        the workload's KEY=VALUE options (selfwork.py); exe: another Python."""
        stamp = os.path.join(self.tmp, f"stamp{len(self.procs)}")
        with open(stamp, "wb") as f:
            f.write(bytes(8))
        # A session of its own: kill_all() reaches a tree's child through
        # its process group, and a ^C at the terminal reaches only us.
        proc = subprocess.Popen([exe or self.executable(name, rule), "-c", WORKLOAD, name, rule,
                                 str(count), str(self.port), stamp, *opts],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, start_new_session=True)
        self.procs.append(proc)
        # A pidfd turns readable the moment the child dies: a prompt clock
        # (Popen.wait with a timeout polls, up to 50 ms late).
        pidfd = os.pidfd_open(proc.pid)
        try:
            died = select.select([pidfd], [], [], RUN_TIMEOUT)[0]
            reaped = time.clock_gettime_ns(time.CLOCK_BOOTTIME)
        finally:
            os.close(pidfd)
        if not died:
            return self._reap(proc), None, proc.pid
        rc = self._reap(proc)
        with open(stamp, "rb") as f:
            t0 = int.from_bytes(f.read(8), "little")
        return rc, (reaped - t0) / 1000 if t0 else None, proc.pid

    @staticmethod
    def _reap(proc: subprocess.Popen) -> int:
        """Kill what is left of its process group (a tree's child), then reap
        it: until then its pid, and so the group's id, can't be reused."""
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except OSError:
            pass
        return proc.wait()

    def kill_all(self) -> None:
        for p in self.procs:
            if p.returncode is None:
                self._reap(p)


def check_rule(k: Killer, runs: Runs, name: str, rule: str) -> dict:
    limit = LIMITS[rule]
    below_rc, _, _ = runs.run(name, rule, limit - 1)
    at_rc, latency, at_pid = runs.run(name, rule, limit)
    ev = k.wait_event(at_pid) if at_rc == -signal.SIGKILL else None
    other_rc, _, _ = runs.run(NON_TARGET, rule, limit)
    at_ok = (at_rc == -signal.SIGKILL and ev is not None and ev.get("event") == "kill"
             and ev.get("rule") == rule and ev.get("value") == limit)
    return {"rule": rule, "limit": limit, "below_lives": below_rc == 0, "at_limit_dies": at_ok,
            "non_target_lives": other_rc == 0, "latency_us": latency if at_ok else None}


def table(rows: list[dict], fams: dict[str, str]) -> list[str]:
    def yes(ok: bool) -> str:
        return "yes" if ok else "NO"
    out = [f"{'RULE':<12} {'FAMILY':<11} {'LIMIT':>7}  BELOW LIVES  AT LIMIT DIES  "
           "NON-TARGET LIVES  KILL LATENCY"]
    for r in rows:
        if "off" in r:
            out.append(f"{r['rule']:<12} {'off':<11} {'-':>7}  this kernel can't: {r['off']}")
            continue
        lat = f"{r['latency_us']:.0f} µs" if r["latency_us"] is not None else "-"
        fam = fams.get(SOURCE[r["rule"]], "tracepoint")
        out.append(f"{r['rule']:<12} {fam:<11} {r['limit']:>7}  {yes(r['below_lives']):<11}  "
                   f"{yes(r['at_limit_dies']):<13}  {yes(r['non_target_lives']):<16}  {lat}")
    return out


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(args: Sequence[str]) -> int:
    Parser(prog="oomkiller selftest", usage="oomkiller selftest",
           description="Prove each rule and selector kind on this kernel with a private "
                       "killer.").parse_args(args)
    if not has_bpf_privileges(effective_caps()):
        return fail("need root, or CAP_BPF and CAP_PERFMON: run it with sudo")
    held, pid = instance.running_pid()
    if held:
        return fail(f"a killer is already running, pid {pid or 'unknown'}: stop it first")
    name = f"st{os.getpid()}k"
    old = {s: signal.signal(s, _interrupt) for s in (signal.SIGINT, signal.SIGTERM)}
    k: Optional[Killer] = None
    setup: Optional[selftest_policies.Setup] = None
    sink = Sink()
    with tempfile.TemporaryDirectory(prefix="oomkiller-selftest-") as tmp:
        runs = Runs(tmp, sink.port)
        try:
            setup = selftest_policies.Setup(tmp, name, NON_TARGET)
            config = os.path.join(tmp, "selftest.conf")
            with open(config, "w") as f:
                f.write(setup.config())
            k = Killer(name, config)
            if not k.wait_ready():
                why = k.stderr[-1].removeprefix("oomkiller: ") if k.stderr else \
                    f"no ready line in {READY_TIMEOUT:.0f}s"
                return fail(f"the selftest's killer did not start: {why}")
            off = k.rules_off()
            rows = [{"rule": r.name, "off": off[r.name]} if r.name in off
                    else check_rule(k, runs, f"{name}-w", r.name) for r in RULES]
            for line in table(rows, k.families()):
                sys.stdout.write(line + "\n")
            selected = [selftest_policies.check(k, runs, setup, kind)
                        for kind in selftest_policies.KINDS]
            for line in selftest_policies.rows_text(selected):
                sys.stdout.write(line + "\n")
            for note in k.kernel_notes():
                if note.partition(" off: ")[0] not in off:
                    sys.stdout.write(f"kernel: {note}\n")
            good = all("off" in r or (r["below_lives"] and r["at_limit_dies"] and
                                      r["non_target_lives"]) for r in rows)
            good = good and selftest_policies.holds(selected)
            sys.stdout.write("every rule and selector holds\n" if good
                             else "a rule or selector does NOT hold\n")
            return EXIT_OK if good else EXIT_FAILURE
        except KeyboardInterrupt:
            return fail("interrupted: every process it started is stopped")
        finally:
            runs.kill_all()
            if k is not None:
                k.stop()
            if setup is not None:
                setup.close()
            sink.close()
            for s, h in old.items():
                signal.signal(s, h)
