"""Bad input (issue 6): a table of bad command-line values. Each must exit 2
with exactly one stderr line starting `oomkiller:` and no traceback, and
must not start anything (it never gets as far as loading BPF). Config-file
values have their own table in tests/test_unit_config.py; the numbers of
issue 17 also go through the real daemon's --config here (PATH:LINE).
"""
import subprocess
from concurrent.futures import ThreadPoolExecutor

import killer as K


COUNT_OPTS = ["--max-fds", "--max-writes", "--max-threads", "--max-rand", "--max-tcp-packets"]
# Issue 17: only ASCII digits; 2^64-1 is rules.OFF, too large for a limit (not `off`).
BAD_COUNTS = ["0", "-1", "abc", "1.5", "", "1e3", "0x10", " ", "18446744073709551616", "5M",
              "18446744073709551615", "５", "+5", "1_000", "٣"]
# Issue 17: a size is a whole number of bytes, in ASCII.
BAD_SIZES = ["-1", "G", "1Q", "1.5.5G", "", "abc", "1e3", "10 M M", "99999999999T", "0x10",
             "--1", "1GG", "M1", "1.5", "1.5B", "0.3K", "５G", "1\u212a"]

TABLE = (
    [[opt, v] for opt in COUNT_OPTS for v in BAD_COUNTS]
    + [["--max-read", v] for v in BAD_SIZES + ["0", "18446744073709551615"]]
    + [["--min-used", v] for v in BAD_SIZES]
    + [["--interval", v] for v in ["0", "-1", "nan", "inf", "-inf", "abc", "", "3601", "1e9",
                                   "0.0", "1e-9", "0.001", "0.0099", "0x10", "２", "1E3",
                                   "Infinity"]]
    + [["--capacity", v] for v in ["0", "-5", "16777217", "abc", "", "2.5", "５", "+5"]]
    + [["--name", v] for v in ["", "0123456789abcdef", "x" * 100]]
    + [["--attach", v] for v in ["bogus", "", "KPROBE", "fentry,kprobe"]]
    + [
        ["--bogus"], ["-x"], ["extra-positional"], ["--max-fds"], ["--min-used"],
        ["--json=yes"], ["--dry-run=1"], ["--max-fds", "10", "--max-fds"],
        ["--interval"], ["--name"], ["--capacity"], ["--attach"], ["--max-writes=-3"],
        ["--max-read=1X"], ["--min-used=", "--json"], ["--verbose=2"], ["--max"],
        ["-vv", "--max-rand", "0"], ["--dry-run", "--max-threads", "-100"],
    ]
)


def run_bad(args):
    try:
        res = subprocess.run([str(K.OOMKILLER), *args], capture_output=True, text=True,
                             timeout=30, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return args, None, "", "accepted: still running after 30s"
    return args, res.returncode, res.stdout, res.stderr


def test_every_bad_argument_exits_2_with_one_line():
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(run_bad, TABLE))
    failures = []
    for args, rc, out, err in results:
        lines = [ln for ln in err.splitlines() if ln.strip()]
        why = []
        if rc != 2:
            why.append(f"exit {rc}")
        if "Traceback" in out + err:
            why.append("traceback")
        if len(lines) != 1:
            why.append(f"{len(lines)} stderr lines")
        elif not lines[0].startswith("oomkiller"):
            why.append("line does not start with oomkiller")
        if "ready" in err:
            why.append("it started")
        if why:
            failures.append(f"{args!r}: {', '.join(why)}: {err.strip()[:300]!r}")
    assert not failures, f"{len(failures)} of {len(TABLE)} bad arguments mishandled:\n" + \
        "\n".join(failures)


# (config line, the option its one line must name after PATH:LINE)
BAD_CONFIG_NUMBERS = [
    ("max-fds = ５", "--max-fds"),
    ("max-threads = 18446744073709551615", "--max-threads"),
    ("max-read = 18446744073709551615", "--max-read"),
    ("min-used = 1.5", "--min-used"),
    ("max-read = 0.3K", "--max-read"),
    ("interval = 1e-9", "--interval"),
    ("interval = 0.001", "--interval"),
    ("capacity = ５", "--capacity"),
]


def test_bad_numbers_in_the_config_file_exit_2_naming_path_line(tmp_path):
    failures = []
    for i, (line, option) in enumerate(BAD_CONFIG_NUMBERS):
        conf = tmp_path / f"bad{i}.conf"
        conf.write_text(f"# issue 17\nname = oomp\n{line}\n", encoding="utf-8")
        _, rc, out, err = run_bad(["--config", str(conf)])
        want = f"oomkiller: {conf}:3: {option}: "
        if rc != 2 or out or "Traceback" in err or err.count("\n") != 1 \
                or not err.startswith(want):
            failures.append(f"{line!r}: exit {rc}: {err.strip()[:300]!r}")
    assert not failures, "\n".join(failures)
