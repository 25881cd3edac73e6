"""The gate opens under a condemned target asleep in pause(): it dies within
two intervals (deadline: 10 s), from the killer's own sweep, while a compliant
target and a non-target that crossed the same limit live.

Works whether the machine is above or below 1 GiB used: the gate is set 2 GiB
above current use, and a ballast opens it.
"""
import signal
import time

import killer as K


INTERVAL = 0.5
DEADLINE = 10.0  # generous; the spec asks for two intervals


def test_condemned_sleeper_dies_when_the_gate_opens(e2e_session, tmp_path):
    gate = K.mem_used() + 2 * K.GiB
    plain = K.plain_copy(tmp_path)
    with K.Killer("--min-used", gate, "--interval", INTERVAL) as k, \
            K.sleeper("write", 150) as victim, \
            K.sleeper("sleep", 0) as compliant, \
            K.sleeper("write", 150, prog=plain) as outsider:
        for w in (victim, compliant, outsider):
            assert w.wait_state(K.S_SLEEPING), f"{w.args} did not reach pause()"
        ev = k.wait_event(pid=victim.pid, kind="condemned")
        assert ev is not None and K.rule_key(ev["rule"]) == "writes", k.events
        # sweeps with the gate closed: the condemned sleeper lives
        k.wait_samples(3)
        assert victim.alive(), "condemned target killed while the gate was closed"
        assert K.mem_used() < gate

        with K.Ballast(gate + int(1.5 * K.GiB) - K.mem_used()):
            assert K.mem_used() >= gate, "ballast did not open the gate"
            t0 = time.monotonic()
            K.wait_until(lambda: victim.proc.poll() is not None, DEADLINE)
            rc = victim.proc.poll()
            print(f"condemned sleeper gone {time.monotonic() - t0:.2f}s after the ballast was up")
            assert rc == -signal.SIGKILL, \
                f"condemned sleeper not killed by SIGKILL within {DEADLINE}s of the gate opening " \
                f"(returncode {rc}); killer stderr:\n{k.stderr_text()}"
            kill = k.wait_event(pid=victim.pid, kind="kill")
            assert kill is not None, k.events
            assert kill["mem_used_bytes"] >= gate, kill
            # more sweeps with the gate open: compliant targets and non-targets are still there
            k.wait_samples(3)
            assert compliant.alive(), "a compliant target died when the gate opened"
            assert outsider.alive(), "a non-target died when the gate opened"
        assert not k.find_events(pid=compliant.pid)
        assert not k.find_events(pid=outsider.pid)
