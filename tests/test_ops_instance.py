"""Single instance, the pins' life cycle, and nothing left attached (issue 5)."""
from __future__ import annotations

import signal
import subprocess

import killer as K
import ops_helpers as H

SECOND_TIMEOUT = 30.0


def test_a_second_killer_is_refused_and_the_first_runs_on():
    with K.Killer("--min-used", "0") as k:
        res = subprocess.run([str(K.OOMKILLER), "--min-used", "0"], capture_output=True,
                             text=True, timeout=SECOND_TIMEOUT, stdin=subprocess.DEVNULL)
        assert res.returncode == 1, res
        assert res.stderr.count("\n") == 1 and "Traceback" not in res.stderr
        assert "already running" in res.stderr and f"pid {k.pid}" in res.stderr
        assert res.stderr.startswith("oomkiller: ")
        # The refused one took nothing down: the first still publishes and kills.
        assert H.status_json()["pid"] == k.pid
        res = K.work("write", "100")
        assert res.killed, res.describe()


def test_clean_stop_removes_pins_and_state_and_detaches_everything():
    with K.Killer("--min-used", "0") as k:
        assert H.PIN_DIR.is_dir()
        assert sorted(p.name for p in H.PIN_DIR.iterdir()) == ["config", "holds", "procs", "stats"]
        assert H.STATE_PATH.is_file()
        ours = H.killer_prog_ids(k.pid)
        assert ours and ours <= K.bpf_prog_ids()
    assert k.returncode == 0
    assert not H.PIN_DIR.exists()
    assert not H.STATE_PATH.exists()
    assert H.gone(ours), f"programs left loaded: {K.bpf_prog_names(sorted(ours))}"
    assert H.status().returncode == 1


def test_after_sigkill_only_maps_stay_and_the_next_start_cleans_them():
    k = K.Killer("--min-used", "0")
    k.start()
    try:
        ours = H.killer_prog_ids(k.pid)
        k.stop(signal.SIGKILL, check=False)
    finally:
        k._reap()
    assert ours and k.returncode == -signal.SIGKILL
    # Programs and links die with the loader; only the pinned maps stay.
    assert H.gone(ours), K.bpf_prog_names(sorted(ours))
    assert H.PIN_DIR.is_dir()
    res = H.status()
    assert res.returncode == 1 and "no killer running" in res.stderr
    with K.Killer("--min-used", "0") as k2:
        st = H.status_json()
        assert st["pid"] == k2.pid and st["kills"] == 0  # fresh maps, not the stale ones
    assert not H.PIN_DIR.exists() and not H.STATE_PATH.exists()
