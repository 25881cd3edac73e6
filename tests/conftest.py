"""Session set-up for the end-to-end tests (tests/test_e2e_*.py).

They run the real ./oomkiller as root and real workloads from build/progs.
Two killers at once kill each other's targets, so the session holds an
exclusive flock on /tmp/oomkiller-e2e.lock (docs/DESIGN.md) for as long as
any test that may start a killer runs (see pytest_collection_modifyitems);
the unit tests need neither root nor the lock.
"""
from __future__ import annotations

import fcntl
import os
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import killer as K  # noqa: E402

LOCK_WAIT = 30 * 60  # seconds: another engineer's run may hold the lock

# Every killer a test starts reads this config file, not a real
# /etc/oomkiller.conf; a test that wants a file sets it for its own killer.
os.environ["OOMKILLER_CONFIG"] = "/dev/null"

SEED_PROGS = [
    "oomp_test_fds", "oomp_test_threads", "oomp_test_reads", "oomp_test_readv",
    "oomp_test_writes", "oomp_test_pwrite64", "oomp_test_packets", "oomp_test_rand",
    "oomp_test_rw_below", "oomp_test_packets_udp",
]
# Every tests/progs/NAME.c is a program the tests run (make progs builds each
# as build/progs/NAME), and the seed's once more in build/progs32.
NEEDED_PROGS = sorted(p.stem for p in (K.ROOT / "tests" / "progs").glob("*.c"))
PROGS32 = K.PROGS.parent / "progs32"
# The 32-bit builds besides the seed's (Makefile, PROGS32).
EXTRA32 = ["oomp_notw"]


def pytest_collection_modifyitems(config, items):
    # Any module that may start a killer runs under the lock: the e2e, ops
    # and rel modules, and any other that imports killer.py.
    for item in items:
        name = Path(str(item.fspath)).name
        module = getattr(item, "module", None)
        uses_killer = module is not None and any(v is K for v in vars(module).values())
        if uses_killer or name.startswith(("test_e2e_", "test_ops_", "test_rel_")):
            item.add_marker(pytest.mark.usefixtures("e2e_session"))


@pytest.fixture(scope="session")
def e2e_session():
    """Lock, root, ./oomkiller and the workloads: fail (never skip) without them."""
    fd = os.open(K.LOCK_PATH, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        deadline = time.monotonic() + LOCK_WAIT
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    pytest.fail(f"{K.LOCK_PATH} still held by another run after {LOCK_WAIT}s")
                time.sleep(1)  # retry the lock another run holds; not a wait on the killer
        if os.geteuid() != 0:
            pytest.fail("the e2e tests load BPF programs and kill processes: run them as root "
                        "(sudo make test)")
        if not os.access(K.OOMKILLER, os.X_OK):
            pytest.fail(f"{K.OOMKILLER} missing: run make")
        missing = [str(K.PROGS / p) for p in NEEDED_PROGS if not os.access(K.PROGS / p, os.X_OK)]
        missing += [str(PROGS32 / p) for p in SEED_PROGS + EXTRA32
                    if not os.access(PROGS32 / p, os.X_OK)]
        if missing:
            pytest.fail(f"workloads missing: {' '.join(missing)}: run make progs")
        yield
    finally:
        os.close(fd)  # releases the flock


@pytest.fixture(scope="module")
def gate_open_ballast(e2e_session):
    """Used memory at least 1.5 GiB above the default gate (1 GiB) for the module."""
    with K.Ballast.opening(1 * K.GiB) as b:
        used = K.mem_used()
        assert used >= K.GiB + int(1.5 * K.GiB), f"ballast up but only {used} bytes in use"
        yield b
        # a non-target: whatever ran in the module, it must still be there
        assert b.proc.poll() is None, f"the ballast (a non-target) died: {b.proc.returncode}"


@pytest.fixture(scope="module")
def default_killer(gate_open_ballast, tmp_path_factory):
    """./oomkiller with the default policy, gate open, shared by a module's
    tests; with a metrics file, whose skipped runs a failure can show."""
    with K.Killer(metrics_file=tmp_path_factory.mktemp("metrics") / "oomkiller.prom") as k:
        yield k
        wrong = [e for e in k.events if e.get("event") == "kill" and "oomp" not in e.get("comm", "")]
        assert not wrong, f"kills of non-targets: {wrong}"


@pytest.fixture(scope="module")
def bystander(default_killer):
    """A compliant target (name has oomp, crosses nothing) that must outlive the module."""
    with K.sleeper("sleep", 0) as w:
        assert w.wait_state(K.S_SLEEPING), "bystander did not reach pause()"
        yield w
