"""The paths older kernels take, run on this one (issue 19).

The killer's probe is told to report kfuncs and trace events absent
(probe.LACK_ENV), as Debian 12's 6.1 lacks them, and the object takes the same
fallback it takes there: the loader sends the deferred kills (no
bpf_send_signal_task before 6.13), the classic fork twin stays out (no task
kfuncs before 6.2), and socket writes are told apart at the syscall's exit
(no sock_send_length before 6.3, so the TCP rule is off). The VM lane runs the
same paths on Debian's 6.1 and 6.12 for real.
"""
import signal

import pytest

import killer as K

LACK = "OOMKILLER_TEST_LACK"  # probe.LACK_ENV
LIKE_6_1 = ("bpf_task_from_pid,bpf_task_release,bpf_send_signal_task,bpf_preempt_disable,"
            "bpf_preempt_enable,sock_send_length")
LOADER_SENDS = "deferred kills sent by the loader: no bpf_send_signal_task (Linux 6.13+)"
TCP_OFF = "no sock_send_length tracepoint (Linux 6.3+)"
INTERVAL = 0.5
DEADLINE = 10.0


@pytest.mark.parametrize("dry_run", [False, True], ids=["kill", "dry-run"])
def test_without_bpf_send_signal_task_the_loader_sends_the_deferred_kill(e2e_session, tmp_path,
                                                                          dry_run):
    """A target condemned behind the closed gate, asleep when it opens: BPF
    lists it, checks it and claims the kill; the loader sends SIGKILL through
    a pidfd; the kill event comes from BPF once the signal was sent. A
    compliant target and a non-target that crossed the same limit live."""
    gate = K.mem_used() + 2 * K.GiB
    plain = K.plain_copy(tmp_path)
    args = ["--min-used", gate, "--interval", INTERVAL] + (["--dry-run"] if dry_run else [])
    with K.Killer(*args, env={LACK: "bpf_send_signal_task"}) as k, \
            K.sleeper("write", 150) as victim, \
            K.sleeper("sleep", 0) as compliant, \
            K.sleeper("write", 150, prog=plain) as outsider:
        assert LOADER_SENDS in k.kernel_notes, k.ready_line
        for w in (victim, compliant, outsider):
            assert w.wait_state(K.S_SLEEPING), f"{w.args} did not reach pause()"
        assert k.wait_event(pid=victim.pid, kind="condemned") is not None, k.events
        k.wait_samples(3)
        assert victim.alive(), "condemned target killed while the gate was closed"

        with K.Ballast(gate + int(1.5 * K.GiB) - K.mem_used()):
            assert K.mem_used() >= gate, "ballast did not open the gate"
            kind = "dry-run" if dry_run else "kill"
            ev = k.wait_event(pid=victim.pid, kind=kind, timeout=DEADLINE)
            assert ev is not None, f"no {kind} event within {DEADLINE}s: {k.events[-5:]}"
            assert (K.rule_key(ev["rule"]), ev["value"], ev["tid"]) == \
                (K.rule_key("writes"), 100, 0), ev
            if dry_run:
                sweeps = k.status()["sweeps"]
                K.wait_until(lambda: k.status()["sweeps"] > sweeps, DEADLINE)
                assert victim.alive(), "--dry-run, and the loader sent a kill"
            else:
                K.wait_until(lambda: victim.proc.poll() is not None, DEADLINE)
                assert victim.proc.poll() == -signal.SIGKILL, victim.proc.poll()
                sweeps = k.status()["sweeps"]
                K.wait_until(lambda: k.status()["sweeps"] > sweeps, DEADLINE)
            assert compliant.alive(), compliant.proc.poll()
            assert outsider.alive(), "\n".join(map(str, [outsider.proc.poll(), outsider.proc.pid, victim.proc.pid, compliant.proc.pid] + k.events))
            assert len(k.find_events(pid=victim.pid, kind=kind)) == 1, k.events
        assert not k.find_events(pid=compliant.pid) and not k.find_events(pid=outsider.pid)


@pytest.fixture(scope="module")
def like_6_1(gate_open_ballast, tmp_path_factory):
    """The default policy with every 6.1 fallback at once."""
    prom = tmp_path_factory.mktemp("metrics") / "oomkiller.prom"
    with K.Killer("--metrics-file", prom, env={LACK: LIKE_6_1}) as k:
        k.prom = prom
        yield k
        wrong = [e for e in k.events if e.get("event") == "kill" and "oomp" not in e.get("comm", "")]
        assert not wrong, f"kills of non-targets: {wrong}"


def test_the_ready_line_says_what_this_kernel_changes(like_6_1):
    assert like_6_1.rules_off == {"tcp-packets": TCP_OFF}, like_6_1.ready_line
    assert LOADER_SENDS in like_6_1.kernel_notes
    assert " tcp=off " in like_6_1.ready_line, like_6_1.ready_line
    st = like_6_1.status()
    assert f"tcp-packets off: {TCP_OFF}" in st["kernel"], st["kernel"]
    K.wait_until(like_6_1.prom.exists, 10)
    text = like_6_1.prom.read_text()
    assert 'oomkiller_rule_supported{rule="tcp-packets"} 0' in text, text
    assert 'oomkiller_rule_supported{rule="writes"} 1' in text, text


@pytest.mark.parametrize("prog, rule", [
    ("oomp_test_fds", "fds"), ("oomp_test_threads", "threads"),
    ("oomp_test_reads", "read-bytes"), ("oomp_test_writes", "writes"),
    ("oomp_test_rand", "rand"),
])
def test_every_other_rule_still_kills(like_6_1, prog, rule):
    res = K.run(prog)
    assert res.killed, f"expected SIGKILL: {res.describe()}"
    ev = like_6_1.wait_event(pid=res.pid, kind="kill")
    assert ev is not None and K.rule_key(ev["rule"]) == K.rule_key(rule), like_6_1.events[-5:]


def test_150_file_writes_die_at_the_100th(like_6_1, tmp_path):
    res = K.work("write", 150)
    assert res.killed, res.describe()
    assert like_6_1.kill_event(res.pid, "writes")["value"] == 100
    assert res.done == 99, res.describe()


@pytest.mark.parametrize("via", ["write", "writev", "sendfile"])
def test_socket_writes_are_no_writes_without_sock_send_length(like_6_1, via):
    """Each call is marked at its syscall's exit by the fd it wrote to; 150
    of them on a TCP socket are neither writes nor (the rule is off) packets."""
    res = K.work("tcp-send", 150, "--via", via, "--nodelay", "-c", 16)
    assert res.ok and res.done == 150, res.describe()
    assert not like_6_1.find_events(pid=res.pid)


def test_udp_writes_live(like_6_1):
    res = K.work("udp-send", 300, "--via", "write", "-c", 16)
    assert res.ok and res.done == 300, res.describe()
    assert not like_6_1.find_events(pid=res.pid)


def test_tcp_sends_past_the_limit_live_with_the_rule_off(like_6_1):
    res = K.work("tcp-send", 1000, "--via", "write", "--nodelay", "-c", 16)
    assert res.ok and res.done == 1000, res.describe()
    assert not like_6_1.find_events(pid=res.pid)
