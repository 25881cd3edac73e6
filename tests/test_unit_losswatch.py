"""LossWatch: the warnings about counts the BPF side could not keep, and the
rate-limited warning about runs the kernel skipped (issue 17, item 8).

No root and no BPF: a fake clock and recorded messages. The end-to-end path
can't be forced on this machine (its 6.18 kernel, preempt=none, skips no runs),
so these tests are the proof of the rate limit and the message.
"""
from __future__ import annotations

import io
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from oomkiller.bpf import abi  # noqa: E402
from oomkiller.bpf.livestats import SKIP_WARN_PERIOD, LossWatch, counts  # noqa: E402
from oomkiller.messages import Messages  # noqa: E402
from oomkiller.outputs import journal  # noqa: E402


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Watch:
    """A LossWatch with a fake clock, its warnings and -v notes recorded."""

    def __init__(self) -> None:
        self.clock = Clock()
        self.warned: list[str] = []
        self.said: list[str] = []
        self.w = LossWatch(100, self.warned.append, self.said.append, clock=self.clock)
        self.st = abi.OomkStats()

    def tick(self, after: float, **missed: int) -> list[str]:
        """One check `after` seconds on with these totals; the warnings it gave."""
        self.clock.now += after
        n = len(self.warned)
        self.w.check(self.st, dict(missed))
        return self.warned[n:]


def test_no_skipped_runs_no_warning():
    t = Watch()
    for _ in range(5):
        assert t.tick(1, tp_sys_exit=0, on_exit=0) == []
    assert t.said == []


def test_the_first_skips_are_warned_at_once_with_program_and_count():
    t = Watch()
    assert t.tick(5, tp_sys_exit=0, on_exit=0) == []
    got = t.tick(5, tp_sys_exit=37, on_exit=2, on_fork=0)
    assert got == ["the kernel skipped 37 runs of tp_sys_exit, 2 of on_exit in the last 5 s "
                   "(recursion guard): a skipped run's checkpoint waits for the thread's next "
                   "one, where its counts are caught up (a kill can come that much later)"]


def test_at_most_one_warning_a_minute_and_no_run_is_lost():
    t = Watch()
    assert len(t.tick(1, tp_sys_exit=10)) == 1
    # A quiet minute: skips go on, no warning, none forgotten.
    total, on_exit = 10, 0
    quiet = 0.0
    while quiet + 5 < SKIP_WARN_PERIOD:
        total += 3
        on_exit += 1
        assert t.tick(5, tp_sys_exit=total, on_exit=on_exit) == [], t.warned
        quiet += 5
    total += 3
    got = t.tick(5, tp_sys_exit=total, on_exit=on_exit)
    assert len(got) == 1, t.warned
    assert got[0].startswith(f"the kernel skipped {total - 10} runs of tp_sys_exit, "
                             f"{on_exit} of on_exit in the last {int(quiet + 5)} s "), got
    # The counts start again from that warning.
    assert t.tick(1, tp_sys_exit=total + 1) == []
    later = t.tick(SKIP_WARN_PERIOD, tp_sys_exit=total + 4)
    assert later and later[0].startswith("the kernel skipped 4 runs of tp_sys_exit in the last 61 s "), later


def test_skips_after_a_quiet_spell_are_warned_at_once():
    t = Watch()
    assert t.tick(1, fx_sys_write=1)
    for _ in range(30):
        assert t.tick(10, fx_sys_write=1) == []
    got = t.tick(10, fx_sys_write=2)
    assert got and got[0].startswith("the kernel skipped 1 run of fx_sys_write in the last 10 s "), got


def test_memory_samplers_are_not_counting_programs():
    assert not counts("fx_mem_si_meminfo") and not counts("kp_mem_si_meminfo_exit")
    assert counts("tp_sys_exit") and counts("fx_sys_write") and counts("kp_sys_i32_write")
    assert counts("on_exit_tp") and counts("on_rand")
    t = Watch()
    assert t.tick(1, fx_mem_si_meminfo=4, tp_sys_exit=0) == []
    assert t.said == ["the kernel skipped 4 runs of fx_mem_si_meminfo (recursion guard): "
                      "if one was our own sample, the next tick samples again"]


def test_a_reload_keeps_the_old_programs_last_skips_and_the_new_count_from_zero():
    t = Watch()
    assert t.tick(1, tp_sys_exit=100)
    t.clock.now += 10
    t.w.programs_replaced({"tp_sys_exit": 107})  # 7 since the last tick, then closed
    assert t.tick(1, tp_sys_exit=5) == []  # the new program's own 5, in the quiet minute
    got = t.tick(SKIP_WARN_PERIOD, tp_sys_exit=5)
    assert got and got[0].startswith("the kernel skipped 12 runs of tp_sys_exit in the last 71 s "), got


def test_the_other_losses_are_still_told_every_tick():
    t = Watch()
    t.st.kill_failed = 1
    assert t.tick(1, tp_sys_exit=3)[0].startswith("the kernel refused 1 SIGKILLs")
    t.st.kill_failed = 2
    t.st.dropped = 5
    got = t.tick(1, tp_sys_exit=9)
    assert got == ["the kernel refused 1 SIGKILLs: those processes stay condemned and are "
                   "tried again", "5 events dropped (ring buffer full)"], got


def test_the_warning_reaches_the_journal_as_a_warning():
    err = io.StringIO()
    msg = Messages(err)
    msg.journal = True  # as if stderr were JOURNAL_STREAM
    w = LossWatch(100, msg.warn, msg.say, clock=Clock())
    w.check(abi.OomkStats(), {"on_exit": 2})
    line = err.getvalue()
    assert line.startswith(f"<{journal.WARNING}>oomkiller: warning: the kernel skipped 2 runs "
                           "of on_exit in the last 1 s (recursion guard): "), line
    assert line.count("\n") == 1
