"""Pure-Python tests of the CLI: arguments, sizes, messages, event lines, family choice.

No root and no BPF.
"""
from __future__ import annotations

import json
import sys
from decimal import Decimal
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from oomkiller import __version__, privileges  # noqa: E402
from oomkiller.bpf import abi, families  # noqa: E402
from oomkiller.commands import cli  # noqa: E402
from oomkiller.config import rules  # noqa: E402
from oomkiller.config.settings import Settings  # noqa: E402
from oomkiller.config.sizes import (format_size, parse_size, plain_decimal,  # noqa: E402
                                    whole_number)
from oomkiller.outputs import events  # noqa: E402

K, M, G, T = 1 << 10, 1 << 20, 1 << 30, 1 << 40


# -- sizes -----------------------------------------------------------------------

@pytest.mark.parametrize("text,value", [
    ("0", 0), ("1", 1), ("1024", 1024), ("512B", 512), ("512b", 512),
    ("1K", K), ("1k", K), ("1KiB", K), ("1kib", K), ("1KB", K),
    ("10M", 10 * M), ("10MiB", 10 * M), ("1G", G), ("1g", G), ("1.5G", 3 * G // 2),
    ("2T", 2 * T), (".5K", 512), ("1.", 1), (" 4M ", 4 * M), ("1.50K", 1536),
    ("0.25K", 256), ("1.0B", 1), ("007", 7), ("0" * 5000 + "1K", K), ("1." + "0" * 5000, 1),
    ("18446744073709551615", (1 << 64) - 1), ("16777215.5T", 16777215 * T + T // 2),
])
def test_parse_size(text, value):
    assert parse_size(text) == value


@pytest.mark.parametrize("text", ["", "G", "1X", "1 G B", "-1", "-1G", "1e3", "0x10", "1GG",
                                  "1.2.3K", "one", "nan", "1P", "+1", "1_000", "inf", ".", "K1",
                                  "５", "1５M", "1\u212a", "\u30001G"])
def test_parse_size_rejects(text):
    with pytest.raises(ValueError):
        parse_size(text)


def test_parse_size_rejects_beyond_u64():
    with pytest.raises(ValueError, match="too large: at most 18446744073709551615 bytes"):
        parse_size("16777216T")
    with pytest.raises(ValueError, match="too large"):
        parse_size("18446744073709551616")
    with pytest.raises(ValueError, match="too large"):
        parse_size("9" * 5000)  # more digits than int() takes: refused as too large, not crashed


@pytest.mark.parametrize("text,exact", [("1.5", ""), ("1.5B", ""), ("0.3K", " (307.2)"),
                                        ("1.0000001K", " (1024.0001024)"), (".1", ""),
                                        ("1." + "0" * 60 + "1G", "")])
def test_parse_size_refuses_a_fraction_of_a_byte(text, exact):
    """1.5 bytes once rounded down to 1 silently: a size is a whole number of bytes."""
    with pytest.raises(ValueError) as e:
        parse_size(text)
    assert str(e.value) == f"is not a whole number of bytes{exact}: round it"


def test_parse_size_names_a_non_ascii_character():
    with pytest.raises(ValueError, match=r"not plain ASCII \(U\+FF15\)"):
        parse_size("５G")


@pytest.mark.parametrize("text,value", [("1", 1), ("007", 7), (" 42 ", 42),
                                        ("18446744073709551615", (1 << 64) - 1)])
def test_whole_number(text, value):
    assert whole_number(text) == value


@pytest.mark.parametrize("text", ["", " ", "５", "1５", "+5", "-5", "1_000", "1.0", "1e3", "0x10",
                                  "٣", "\u30005", "18446744073709551616", "9" * 5000])
def test_whole_number_rejects(text):
    with pytest.raises(ValueError):
        whole_number(text)


@pytest.mark.parametrize("text", ["1", "0.5", ".5", "2.", "0.01", "3600"])
def test_plain_decimal(text):
    assert plain_decimal(text) == Decimal(text)


@pytest.mark.parametrize("text", ["", ".", "1e-9", "1E3", "inf", "Infinity", "nan", "0x10",
                                  "+1", "-1", "1_0", "２", "0.５", "1,5"])
def test_plain_decimal_rejects(text):
    with pytest.raises(ValueError):
        plain_decimal(text)


@pytest.mark.parametrize("value,text", [
    (0, "0B"), (1023, "1023B"), (K, "1.0K"), (10 * M, "10.0M"), (G, "1.0G"),
    (int(1.3 * G), "1.3G"), (3 * T, "3.0T")])
def test_format_size(value, text):
    assert format_size(value) == text


# -- arguments -------------------------------------------------------------------

def test_defaults():
    s = cli.parse_settings([])
    assert s == Settings()
    assert s.min_used == G and s.name == "oomp" and s.interval == 1.0 and s.capacity == 16384
    assert s.limits == [100, 100, 10 * M, 100, 100, 1000]
    assert (s.dry_run, s.json, s.attach, s.verbose) == (False, False, "auto", 0)


def test_every_option():
    s = cli.parse_settings([
        "--min-used", "1.5G", "--name", "victim", "--max-fds", "7", "--max-writes", "8",
        "--max-read", "1M", "--max-threads", "9", "--max-rand", "10", "--max-tcp-packets", "11",
        "--interval", "0.25", "--capacity", "64", "--dry-run", "--json", "--attach", "tracepoint",
        "-vv"])
    assert s.min_used == 3 * G // 2 and s.name == "victim"
    assert s.limits[abi.RULE_FDS] == 7
    assert s.limits[abi.RULE_WRITES] == 8
    assert s.limits[abi.RULE_READ_BYTES] == M
    assert s.limits[abi.RULE_THREADS] == 9
    assert s.limits[abi.RULE_RAND] == 10
    assert s.limits[abi.RULE_TCP_PACKETS] == 11
    assert (s.interval, s.capacity, s.dry_run, s.json, s.attach, s.verbose) == \
        (0.25, 64, True, True, "tracepoint", 2)


def test_equals_form_and_zero_min_used():
    s = cli.parse_settings(["--min-used=0", "--max-read=10MiB", "--name=a b"])
    assert (s.min_used, s.limits[abi.RULE_READ_BYTES], s.name) == (0, 10 * M, "a b")


@pytest.mark.parametrize("argv,what", [
    (["--max-fds", "-1"], "--max-fds"),
    (["--max-fds", "0"], "--max-fds"),
    (["--max-fds", "1.5"], "--max-fds"),
    (["--max-fds", "x"], "--max-fds"),
    (["--max-fds"], "--max-fds"),
    (["--max-writes", "0"], "--max-writes"),
    (["--max-threads", "-5"], "--max-threads"),
    (["--max-rand", "0"], "--max-rand"),
    (["--max-tcp-packets", "0"], "--max-tcp-packets"),
    (["--max-read", "0"], "--max-read"),
    (["--max-read", "10Q"], "--max-read"),
    (["--min-used", "-5G"], "--min-used"),
    (["--min-used", "lots"], "--min-used"),
    (["--interval", "0"], "--interval"),
    (["--interval", "-1"], "--interval"),
    (["--interval", "nan"], "--interval"),
    (["--interval", "inf"], "--interval"),
    (["--interval", "3601"], "--interval"),
    (["--interval", "1e-9"], "--interval"),
    (["--interval", "0.0099"], "--interval"),
    (["--interval", "0x10"], "--interval"),
    (["--interval", "２"], "--interval"),
    (["--capacity", "0"], "--capacity"),
    (["--capacity", "999999999999"], "--capacity"),
    (["--capacity", "５"], "--capacity"),
    (["--max-fds", "５"], "--max-fds"),
    (["--max-fds", "18446744073709551615"], "--max-fds"),
    (["--max-rand", "+5"], "--max-rand"),
    (["--min-used", "1.5"], "--min-used"),
    (["--max-read", "0.3K"], "--max-read"),
    (["--max-read", "18446744073709551615"], "--max-read"),
    (["--name", ""], "--name"),
    (["--name", "0123456789abcdef"], "--name"),
    (["--name", "ééééééééé"], "--name"),  # 9 characters, 18 bytes
    (["--attach", "ebpf"], "--attach"),
    (["--frobnicate"], "--frobnicate"),
    (["extra"], "extra"),
    (["--max"], "--max"),  # no abbreviations
])
def test_bad_arguments_exit_2_with_one_line(argv, what, capsys):
    with pytest.raises(SystemExit) as ei:
        cli.parse_settings(argv)
    assert ei.value.code == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert err.startswith("oomkiller: ") and what in err
    assert "Traceback" not in err and "usage:" not in err


def usage_error(argv, capsys) -> str:
    """The one stderr line of a command line that must exit 2."""
    with pytest.raises(SystemExit) as ei:
        cli.parse_settings(argv)
    assert ei.value.code == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and "Traceback" not in err, err
    return err


@pytest.mark.parametrize("rule", rules.RULES, ids=lambda r: r.name)
def test_a_limit_of_2_64_minus_1_is_too_large_not_off(rule, capsys):
    """2^64-1 is rules.OFF: typed as a number it was silently `off`."""
    err = usage_error([f"--{rule.option}", str(rules.OFF)], capsys)
    unit = " bytes" if rule.unit == "bytes" else ""
    assert err == (f"oomkiller: --{rule.option}: '{rules.OFF}' is too large: at most "
                   f"{rules.OFF - 1}{unit} (or off): see oomkiller --help\n")


def test_the_largest_limit_is_off_minus_1_and_off_is_still_off():
    rule = rules.RULES[abi.RULE_FDS]
    s = cli.parse_settings(["--max-fds", str(rules.OFF - 1), "--max-read", str(rules.OFF - 1)])
    assert s.limits[abi.RULE_FDS] == s.limits[abi.RULE_READ_BYTES] == rules.OFF - 1
    assert rule.format(s.limits[abi.RULE_FDS]) == str(rules.OFF - 1)
    assert "fds" in rules.enabled(s.limits) and "read-bytes" in rules.enabled(s.limits)
    s = cli.parse_settings(["--max-fds", "off", "--max-read", "OFF"])
    assert s.limits[abi.RULE_FDS] == s.limits[abi.RULE_READ_BYTES] == rules.OFF
    assert not {"fds", "read-bytes"} & rules.enabled(s.limits)


def test_a_full_width_digit_is_refused_by_name(capsys):
    """int() takes U+FF15 for 5; a terminal shows it as 5."""
    err = usage_error(["--max-fds", "５"], capsys)
    assert err == ("oomkiller: --max-fds: '５' is not plain ASCII (U+FF15): type the digits 0-9 "
                   "(or off): see oomkiller --help\n")


@pytest.mark.parametrize("text", ["1.5", "1.5B", "0.3K", "1.0000001K"])
def test_a_fraction_of_a_byte_is_refused(text, capsys):
    err = usage_error(["--min-used", text], capsys)
    assert err.startswith(f"oomkiller: --min-used: '{text}' is not a whole number of bytes")
    assert err.endswith(": round it: see oomkiller --help\n")


def test_fractions_that_come_to_whole_bytes_are_fine():
    s = cli.parse_settings(["--min-used", "1.5G", "--max-read", "0.5K"])
    assert s.min_used == 3 * G // 2 and s.limits[abi.RULE_READ_BYTES] == 512


@pytest.mark.parametrize("text,seconds", [("0.01", 0.01), ("0.5", 0.5), ("2", 2.0),
                                          (".25", 0.25), ("3600", 3600.0), ("0.010", 0.01)])
def test_interval_plain_decimals(text, seconds):
    assert cli.parse_settings(["--interval", text]).interval == seconds


@pytest.mark.parametrize("text,why", [
    ("1e-9", "is not a plain decimal number"), ("1E3", "is not a plain decimal number"),
    ("inf", "is not a plain decimal number"), ("nan", "is not a plain decimal number"),
    ("0x10", "is not a plain decimal number"), ("+1", "is not a plain decimal number"),
    ("２", "is not plain ASCII (U+FF12)"), ("0.0099", "must be at least 0.01"),
    ("0.001", "must be at least 0.01"), ("3600.5", "at most 3600 seconds")])
def test_interval_refuses(text, why, capsys):
    err = usage_error(["--interval", text], capsys)
    assert err.startswith("oomkiller: --interval: ") and why in err, err


def test_main_turns_bad_arguments_into_exit_2(capsys):
    with pytest.raises(SystemExit) as ei:
        cli.main(["--max-fds", "0"])
    assert ei.value.code == 2


def test_version(capsys):
    with pytest.raises(SystemExit) as ei:
        cli.main(["--version"])
    assert ei.value.code == 0
    assert capsys.readouterr().out == f"oomkiller {__version__}\n"
    assert __version__ == "0.1.0"


def test_help_fits_one_screen_and_lists_everything(capsys):
    with pytest.raises(SystemExit) as ei:
        cli.main(["--help"])
    assert ei.value.code == 0
    text = capsys.readouterr().out
    lines = text.splitlines()
    assert len(lines) <= 40 and max(len(line) for line in lines) <= 100
    for option, default in [
        ("--min-used", "(1G)"), ("--name", "(oomp)"), ("--max-fds", "(100)"),
        ("--max-writes", "(100)"), ("--max-read", "(10M)"), ("--max-threads", "(100)"),
        ("--max-rand", "(100)"), ("--max-tcp-packets", "(1000)"), ("--interval", "(1)"),
        ("--capacity", "(16384)"), ("--attach", "(auto)")]:
        line = next(line for line in lines if line.strip().startswith(option))
        assert default in line, line
    for option in ("--dry-run", "--json", "--verbose", "--version", "--help"):
        assert option in text
    assert "counter >= limit" in text
    assert "0 " in text and "1 environment" in text and "2 bad usage" in text


# -- privileges ------------------------------------------------------------------

def test_privileges():
    bit = lambda n: 1 << n  # noqa: E731
    assert privileges.has_bpf_privileges(bit(privileges.CAP_SYS_ADMIN))
    assert privileges.has_bpf_privileges(bit(privileges.CAP_BPF) | bit(privileges.CAP_PERFMON))
    assert not privileges.has_bpf_privileges(bit(privileges.CAP_BPF))
    assert not privileges.has_bpf_privileges(bit(privileges.CAP_PERFMON))
    assert not privileges.has_bpf_privileges(0)


def test_effective_caps_reads_capeff(tmp_path):
    status = tmp_path / "status"
    status.write_text("Name:\tx\nCapPrm:\t0000000000000000\nCapEff:\t000000c000000000\n")
    caps = privileges.effective_caps(str(status))
    assert caps == (1 << 38) | (1 << 39)
    assert privileges.effective_caps(str(tmp_path / "missing")) == 0


def test_unprivileged_run_refuses_before_touching_libbpf(monkeypatch, capsys):
    from oomkiller.bpf import _libbpf

    def boom():
        raise AssertionError("libbpf touched")
    monkeypatch.setattr(cli, "effective_caps", lambda *a: 0)
    monkeypatch.setattr(_libbpf, "libbpf", boom)
    with pytest.raises(SystemExit) as ei:
        cli.main([])
    assert ei.value.code == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("oomkiller: ") and "CAP_BPF" in err


# -- events ----------------------------------------------------------------------

def make_event(**kw) -> abi.OomkEvent:
    ev = abi.OomkEvent(ts_boot_ns=5_000_000_000, value=100, limit=100, mem_used=1412345856,
                       pid=1234, tid=1235, kind=abi.EV_KILL, rule=abi.RULE_WRITES,
                       comm=b"oomp_test_write")
    for k, v in kw.items():
        setattr(ev, k, v)
    return ev


def test_text_event(monkeypatch):
    monkeypatch.setenv("TZ", "UTC")
    import time
    time.tzset()
    offset = 1_795_500_000_000_000_000 + 345_000_000 - 5_000_000_000  # realtime - boottime
    line = events.format_event(make_event(), offset, policy="ci")
    stamp, rest = line.split(" ", 1)
    assert rest == ("kill pid=1234 comm=oomp_test_write rule=writes value=100 limit=100 "
                    "mem_used=1412345856 policy=ci")
    assert stamp.endswith(".345+00:00") and stamp[10] == "T" and len(stamp) == 29


@pytest.mark.parametrize("kind,name", [(abi.EV_KILL, "kill"), (abi.EV_DRY_RUN, "dry-run"),
                                       (abi.EV_CONDEMNED, "condemned"), (9, "unknown(9)")])
def test_event_kinds(kind, name):
    assert events.format_event(make_event(kind=kind), 0).split(" ")[1] == name


@pytest.mark.parametrize("rule", rules.RULES, ids=lambda r: r.name)
def test_rule_names(rule):
    line = events.format_event(make_event(rule=rule.id), 0)
    assert f" rule={rule.name} " in line


def test_json_event():
    d = json.loads(events.format_event(make_event(kind=abi.EV_CONDEMNED, rule=abi.RULE_READ_BYTES,
                                                  value=10 * M, limit=10 * M), 0, as_json=True))
    assert d["event"] == "condemned" and d["rule"] == "read-bytes"
    assert (d["pid"], d["tid"], d["comm"]) == (1234, 1235, "oomp_test_write")
    assert (d["value"], d["limit"], d["mem_used_bytes"]) == (10 * M, 10 * M, 1412345856)
    assert isinstance(d["time"], str) and "T" in d["time"]


def test_odd_comm_stays_one_field():
    ev = make_event(comm=b"oomp x\tz\\\xff")
    line = events.format_event(ev, 0)
    assert " comm=oomp\\x20x\\x09z\\\\\\xff rule=" in line
    assert len(line.split(" ")) == 9
    assert json.loads(events.format_event(ev, 0, as_json=True))["comm"] == "oomp x\tz\\\\xff"


def test_full_length_comm():
    ev = make_event(comm=b"oomp_0123456789a")  # 16 bytes, no NUL: ctypes stops at the array end
    assert " comm=oomp_0123456789a " in events.format_event(ev, 0)


def test_policy_text():
    s = Settings()
    assert s.policy_text() == ('name~"oomp" min-used=1.0G fds=100 writes=100 read-bytes=10.0M '
                               'threads=100 rand=100 tcp-packets=1000 interval=1s')
    s.dry_run, s.interval = True, 0.5
    assert s.policy_text().endswith("interval=0.5s dry-run")


# -- family selection ------------------------------------------------------------

PROGS = [families.Prog(n, s) for n, s in [
    ("tp_sys_exit", "tp_btf/sys_exit"),
    ("tp_sys_exit_tp", "tracepoint/raw_syscalls/sys_exit"),
    ("fx_sys_write", "fexit/__x64_sys_write"),
    ("fx_sys_pwritev2", "fexit/__x64_sys_pwritev2"),
    ("kp_sys_write", "kretprobe/__x64_sys_write"),
    ("kp_sys_pwritev2", "kretprobe/__x64_sys_pwritev2"),
    ("fx_mem_si_meminfo", "fexit/si_meminfo"),
    ("kp_mem_si_meminfo_entry", "kprobe/si_meminfo"),
    ("kp_mem_si_meminfo_exit", "kretprobe/si_meminfo"),
    ("on_sock_send", "tp_btf/sock_send_length"),
    ("on_sock_send_tp", "tracepoint/sock/sock_send_length"),
    ("on_exec", "tp_btf/sched_process_exec"),
    ("on_exec_tp", "tracepoint/sched/sched_process_exec"),
    ("on_exit", "tp_btf/sched_process_exit"),
    ("on_exit_tp", "tracepoint/sched/sched_process_exit"),
    ("on_fork", "tp_btf/sched_process_fork"),
    ("on_fork_tp", "tracepoint/sched/sched_process_fork"),
    ("on_rand", "uprobe"),
    ("sweep", "syscall"),
]]
ALWAYS = ["on_sock_send", "on_sock_send_tp", "on_exec", "on_exec_tp", "on_exit", "on_exit_tp",
          "on_fork", "on_fork_tp", "on_rand", "sweep"]


class FakeProbe:
    def __init__(self, fentry=True, kprobe=True, missing=(), tp_preempt=False):
        self.fentry, self.kprobe, self.missing = fentry, kprobe, set(missing)
        self.tp_preempt = tp_preempt
        self.fentry_probes = 0

    def fentry_ok(self, prog):
        self.fentry_probes += 1
        return None if self.fentry else "BPF trampolines refused"

    def kprobe_ok(self):
        return None if self.kprobe else "no kprobes"

    def tp_btf_preemptible(self):
        return self.tp_preempt

    def in_btf(self, func):
        return func not in self.missing

    in_kallsyms = in_btf
    has_event = in_btf



def test_prog_names_and_targets():
    p = families.Prog("kp_sys_write", "kretprobe/__x64_sys_write")
    assert (p.variant, p.target) == (("kprobe", "sys"), "__x64_sys_write")
    assert families.Prog("x", "kprobe/foo+0x10").target == "foo"
    assert families.Prog("on_rand", "uprobe").variant is None
    assert families.Prog("tp_sys_exit", "tp_btf/sys_exit").target is None


def test_this_machine_resolves_to_tracepoint():
    plan = families.make_plan(PROGS, "auto", FakeProbe(fentry=False, kprobe=False))
    assert plan.families == {"mem": "tracepoint", "sys": "tracepoint", "tcp": "tracepoint"}
    assert plan.all_tracepoint
    assert plan.flags == abi.CF_SYS_TP | abi.CF_MEM_TP
    assert sorted(plan.autoload) == sorted(["tp_sys_exit"] + ALWAYS)
    assert any("trampolines" in n for n in plan.notes) and any("kprobes" in n for n in plan.notes)


def test_auto_prefers_the_cheapest_exact_family():
    plan = families.make_plan(PROGS, "auto", FakeProbe())
    # TCP is the sock_send_length tracepoint (twice) in every family.
    # sys: the tracepoint (families.AUTO_ORDER says why).
    assert plan.families == {"mem": "fentry", "sys": "tracepoint", "tcp": "tracepoint"}
    assert plan.flags == abi.CF_SYS_TP
    assert sorted(plan.autoload) == sorted(["tp_sys_exit", "fx_mem_si_meminfo"] + ALWAYS)


def test_every_family_loads_the_tp_btf_sys_exit_and_the_classic_twin_where_it_is_preemptible():
    """fexit runs are preemptible with a per-CPU recursion guard; kretprobes
    have a bounded pool and, like every classic tracepoint, are skipped
    while a preempted bpf(2) map call holds bpf_prog_active; tp_btf runs are
    preemptible only since 7.0. So every family counts syscalls in the tp_btf
    sys_exit too, and where that is preemptible the classic twin joins it."""
    for tp_preempt in (False, True):
        for fam, own in (("fentry", "fx_sys_write"), ("kprobe", "kp_sys_write")):
            plan = families.make_plan(PROGS, fam, FakeProbe(tp_preempt=tp_preempt))
            assert own in plan.autoload and "tp_sys_exit" in plan.autoload
            assert plan.flags & abi.CF_SYS_TP and not plan.flags & abi.CF_MEM_TP
            # the classic twin, where loaded, is the one program that counts AIO
            assert ("tp_sys_exit_tp" in plan.autoload) == tp_preempt
            assert bool(plan.flags & abi.CF_SYS_TWIN) == tp_preempt
    six = families.make_plan(PROGS, "tracepoint", FakeProbe())
    assert "tp_sys_exit" in six.autoload and "tp_sys_exit_tp" not in six.autoload
    assert not six.flags & abi.CF_SYS_TWIN
    seven = families.make_plan(PROGS, "tracepoint", FakeProbe(tp_preempt=True))
    assert "tp_sys_exit" in seven.autoload and "tp_sys_exit_tp" in seven.autoload
    assert seven.flags == abi.CF_SYS_TP | abi.CF_MEM_TP | abi.CF_SYS_TWIN
    # mem alone takes tp_sys_exit, never the twin
    mem = families.make_plan(PROGS, "auto", FakeProbe(missing={"si_meminfo"}, tp_preempt=True))
    assert mem.families == {"mem": "tracepoint", "sys": "tracepoint", "tcp": "tracepoint"}


def test_missing_syscall_is_skipped_not_fatal():
    plan = families.make_plan(PROGS, "kprobe", FakeProbe(missing={"__x64_sys_pwritev2"}))
    assert plan.families["sys"] == "kprobe"
    assert "kp_sys_pwritev2" not in plan.autoload and "kp_sys_write" in plan.autoload
    assert [name for name, _ in plan.skipped] == ["kp_sys_pwritev2"]


def test_missing_mem_target_demotes_that_source_only():
    plan = families.make_plan(PROGS, "auto", FakeProbe(missing={"si_meminfo"}))
    assert plan.families == {"mem": "tracepoint", "sys": "tracepoint", "tcp": "tracepoint"}
    assert plan.flags == abi.CF_SYS_TP | abi.CF_MEM_TP
    assert "tp_sys_exit" in plan.autoload


def test_kprobe_when_no_trampolines():
    plan = families.make_plan(PROGS, "auto", FakeProbe(fentry=False))
    assert plan.families["mem"] == "kprobe"
    assert "kp_mem_si_meminfo_entry" in plan.autoload and "kp_mem_si_meminfo_exit" in plan.autoload


def test_forced_family_unavailable_fails():
    with pytest.raises(families.FamilyUnavailable, match="kprobe unavailable for mem: no kprobes"):
        families.make_plan(PROGS, "kprobe", FakeProbe(kprobe=False))
    with pytest.raises(families.FamilyUnavailable, match="fentry"):
        families.make_plan(PROGS, "fentry", FakeProbe(fentry=False))


def test_forced_tracepoint_even_where_better_exists():
    plan = families.make_plan(PROGS, "tracepoint", FakeProbe())
    assert plan.all_tracepoint and plan.flags == abi.CF_SYS_TP | abi.CF_MEM_TP


def test_unknown_programs_are_always_loaded():
    progs = PROGS + [families.Prog("on_rename", "tp_btf/task_rename")]
    plan = families.make_plan(progs, "auto", FakeProbe(fentry=False, kprobe=False))
    assert "on_rename" in plan.autoload


def test_every_rule_is_an_option_a_config_key_and_a_default():
    """One rules table: the CLI, the config file and the defaults follow it."""
    from oomkiller.config import config, settings
    s = cli.parse_settings([])
    assert s.limits == [r.default for r in rules.RULES] == settings.Settings().limits
    for r in rules.RULES:
        assert r.option in config.VALUE_KEYS
        assert r.help.endswith(")")
        big = "7M" if r.unit == "bytes" else "7"
        assert cli.parse_settings([f"--{r.option}", big]).limits[r.id] == \
            (7 << 20 if r.unit == "bytes" else 7)
        assert f"{r.name}=" in s.policy_text()


def test_an_older_kernel_gets_its_fallback_programs_flags_and_notes():
    """6.1's shape: no task kfuncs, no bpf_send_signal_task, no
    sock_send_length, io_uring_submit_sqe for io_uring_submit_req."""
    progs = PROGS + [families.Prog(n, s) for n, s in [
        ("hand_over", "iter/task"), ("kill_sent", "syscall"),
        ("on_uring_submit", "tp_btf/io_uring_submit_req"),
        ("on_uring_submit_sqe", "tp_btf/io_uring_submit_sqe")]]
    new = families.make_plan(progs, "tracepoint", FakeProbe(missing={"io_uring_submit_sqe"}))
    assert new.features == (abi.CF_TASK_KFUNCS | abi.CF_SIGNAL_TASK | abi.CF_PREEMPT
                            | abi.CF_SOCK_TP)
    assert "hand_over" not in new.autoload and "kill_sent" not in new.autoload
    assert "on_fork_tp" in new.autoload and "on_uring_submit" in new.autoload
    assert "on_uring_submit_sqe" not in new.autoload
    assert new.rules_off == {} and new.kernel_notes() == []
    old = families.make_plan(progs, "tracepoint", FakeProbe(missing={
        "bpf_task_from_pid", "bpf_task_release", "bpf_send_signal_task", "bpf_preempt_disable",
        "bpf_preempt_enable", "sock_send_length", "io_uring_submit_req"}))
    assert old.features == 0 and old.cfg_flags == old.flags
    for name in ("hand_over", "kill_sent", "on_uring_submit_sqe", "on_fork"):
        assert name in old.autoload, name
    for name in ("on_fork_tp", "on_sock_send", "on_sock_send_tp", "on_uring_submit"):
        assert name not in old.autoload, name
    assert ("on_sock_send", "no sock_send_length event in this kernel") in old.skipped
    assert old.rules_off == {"tcp-packets": "no sock_send_length tracepoint (Linux 6.3+)"}
    assert old.kernel_notes() == [
        "tcp-packets off: no sock_send_length tracepoint (Linux 6.3+)",
        "deferred kills sent by the loader: no bpf_send_signal_task (Linux 6.13+)"]
