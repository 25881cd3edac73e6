"""The command line with killers of its own (no shared killer in this module):
plain event lines, --dry-run, shutdown with nothing left attached, bad
arguments, an unavailable family, --version, the non-root refusal."""
import os
import shutil
import signal
import subprocess
import tempfile

import pytest

import killer as K
from oomkiller.config.rules import OFF


def run_cli(*args, timeout=60, **kw):
    return subprocess.run([str(K.OOMKILLER), *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL, **kw)


# ---- events ----------------------------------------------------------------

def test_plain_event_line(gate_open_ballast):
    with K.Killer(json_events=False) as k:
        res = K.work("rand", 100)
        assert res.killed, res.describe()
        line = K.wait_until(lambda: [ln for ln in k.stdout_lines if str(res.pid) in ln], 5)
        assert line, k.stdout_lines
        line = line[0]
        for part in (str(res.pid), "oomp_work", "rand", "100"):
            assert part in line, f"{part!r} not in event line {line!r}"
        assert not line.startswith("{"), line


def test_dry_run_reports_and_kills_nothing(gate_open_ballast):
    with K.Killer("--dry-run") as k:
        assert "dry" in k.ready_line.lower(), k.ready_line
        res = K.work("write", 150, out=True)
        assert res.ok, f"--dry-run killed: {res.describe()}"
        assert res.out_size == 150  # one byte a write: all 150 ran
        ev = k.wait_event(pid=res.pid, kind="dry-run")
        assert ev is not None, k.events
        assert K.rule_key(ev["rule"]) == "writes" and ev["value"] == 100, ev
        seed = K.run("oomp_test_fds")
        assert seed.ok, seed.describe()
        assert k.wait_event(pid=seed.pid, kind="dry-run") is not None
        assert not k.find_events(kind="kill")


def test_name_option_changes_the_target(gate_open_ballast, tmp_path):
    plain = K.plain_copy(tmp_path, "plainwork")
    with K.Killer("--name", "plainw") as k:
        assert "plainw" in k.ready_line, k.ready_line
        res = K.work("write", 150, prog=plain)
        assert res.killed, f"--name plainw: plainwork must die: {res.describe()}"
        ev = k.wait_event(pid=res.pid, kind="kill")
        assert ev is not None and ev["comm"] == "plainwork", k.events
        other = K.work("write", 150)
        assert other.ok, f"--name plainw: oomp_work is no target: {other.describe()}"


# ---- shutdown ----------------------------------------------------------------

def _wait_gone(ids, timeout=10.0):
    # program teardown is asynchronous (RCU): give the kernel a moment
    return K.wait_until(lambda: not (ids & K.bpf_prog_ids()), timeout) or \
        not (ids & K.bpf_prog_ids())


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_clean_shutdown_detaches_everything(gate_open_ballast, sig):
    before = K.bpf_prog_ids()
    k = K.Killer()
    with k:
        ours = K.bpf_prog_ids() - before
        assert ours, "the killer runs but bpftool shows no new program"
        rc = k.stop(sig, check=False)
        assert rc == 0, f"exit {rc} after {sig.name}; stderr:\n{k.stderr_text()}"
    assert "Traceback" not in k.stderr_text()
    left = ours & K.bpf_prog_ids()
    assert _wait_gone(ours), f"still loaded after exit: {K.bpf_prog_names(left)}"
    # and nothing enforces any more
    res = K.work("write", 150)
    assert res.ok, f"killed after the killer stopped: {res.describe()}"


def test_sigkilled_loader_leaves_nothing_attached(gate_open_ballast):
    before = K.bpf_prog_ids()
    k = K.Killer()
    k.start()
    try:
        ours = K.bpf_prog_ids() - before
        assert ours, "the killer runs but bpftool shows no new program"
    finally:
        rc = k.stop(signal.SIGKILL, check=False)
    assert rc == -signal.SIGKILL, rc
    assert _wait_gone(ours), f"still loaded: {K.bpf_prog_names(ours & K.bpf_prog_ids())}"
    res = K.work("write", 150)
    assert res.ok, f"killed after the killer died: {res.describe()}"


# ---- errors --------------------------------------------------------------------

BAD_ARGS = [
    ["--min-used", "-1"],
    ["--min-used", "abc"],
    ["--min-used", "12Q"],
    ["--min-used", ""],
    ["--max-fds", "0"],
    ["--max-fds", "-3"],
    ["--max-writes", "x"],
    ["--max-writes", "0"],
    ["--max-read", "0"],
    ["--max-read", "-1M"],
    ["--max-read", "ten"],
    ["--max-threads", "-1"],
    ["--max-rand", "0"],
    ["--max-tcp-packets", "0"],
    ["--max-tcp-packets", "1.5"],
    ["--interval", "0"],
    ["--interval", "-1"],
    ["--interval", "abc"],
    ["--name", ""],
    ["--name", "x" * 16],
    ["--attach", "bogus"],
    ["--bogus"],
    ["--min-used"],
    ["positional"],
]


@pytest.mark.parametrize("args", BAD_ARGS, ids=lambda a: " ".join(a) or "empty")
def test_bad_argument_exits_2_with_one_line(e2e_session, args):
    res = run_cli(*args)
    K.one_line_error(res, 2, f"oomkiller {' '.join(args)}")


def test_unavailable_family_is_refused(e2e_session):
    if os.path.exists("/sys/bus/event_source/devices/kprobe"):
        # a kernel with kprobes: forcing the family must work
        with K.Killer("--attach", "kprobe", attach=False) as k:
            assert "kprobe" in k.ready_line, k.ready_line
    else:
        # this machine: CONFIG_KPROBES unset, so forcing kprobe must fail clearly
        res = run_cli("--attach", "kprobe", timeout=60)
        K.one_line_error(res, 1, "--attach kprobe without kprobes")
        assert "kprobe" in res.stderr, res.stderr


def test_version(e2e_session):
    res = run_cli("--version")
    assert res.returncode == 0, res
    assert res.stdout.strip() or res.stderr.strip()
    assert "Traceback" not in res.stderr


def test_non_root_is_refused(e2e_session):
    tmp = tempfile.mkdtemp(prefix="oomk-nonroot-")
    try:
        os.chmod(tmp, 0o755)
        app = os.path.join(tmp, "oomkiller")
        shutil.copy2(K.OOMKILLER, app)
        os.chmod(app, 0o755)
        env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": tmp}
        res = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                              app, *K.attach_args()],
                             capture_output=True, text=True, timeout=60, cwd=tmp, env=env,
                             stdin=subprocess.DEVNULL)
        K.one_line_error(res, 1, "as user nobody")
        low = res.stderr.lower()
        assert "root" in low or "cap_bpf" in low, res.stderr
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_the_largest_limits_load_and_still_count(gate_open_ballast):
    """A limit is a constant to the verifier. Comparing the fd walk's sum with
    it once made the verifier track the sum through every bpf_loop iteration:
    --max-fds 2^30 took 648 s to load here. Now every rule at its largest
    loads within the usual ready timeout, and the other limits still hold."""
    huge = str(OFF - 1)  # the largest limit: OFF itself means off
    with K.Killer("--max-fds", str(1 << 30), "--max-read", "16777215T", "--max-threads", huge,
                  "--max-rand", huge, "--max-tcp-packets", huge) as k:
        assert "fds=1073741824" in k.ready_line, k.ready_line
        res = K.work("write", 100)
        assert res.killed, res.describe()
        ev = k.wait_event(pid=res.pid, kind="kill")
        assert ev is not None and K.rule_key(ev["rule"]) == "writes" and ev["value"] == 100, ev
