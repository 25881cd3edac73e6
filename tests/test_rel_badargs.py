"""Bad input (issue 6): a table of bad command-line values. Each must exit 2
with exactly one stderr line starting `oomkiller:` and no traceback, and
must not start anything (it never gets as far as loading BPF). Config-file
values have their own table in tests/test_unit_config.py.
"""
import subprocess
from concurrent.futures import ThreadPoolExecutor

import killer as K


COUNT_OPTS = ["--max-fds", "--max-writes", "--max-threads", "--max-rand", "--max-tcp-packets"]
BAD_COUNTS = ["0", "-1", "abc", "1.5", "", "1e3", "0x10", " ", "18446744073709551616", "5M"]
BAD_SIZES = ["-1", "G", "1Q", "1.5.5G", "", "abc", "1e3", "10 M M", "99999999999T", "0x10",
             "--1", "1GG", "M1"]

TABLE = (
    [[opt, v] for opt in COUNT_OPTS for v in BAD_COUNTS]
    + [["--max-read", v] for v in BAD_SIZES + ["0"]]
    + [["--min-used", v] for v in BAD_SIZES]
    + [["--interval", v] for v in ["0", "-1", "nan", "inf", "-inf", "abc", "", "3601", "1e9",
                                   "0.0"]]
    + [["--capacity", v] for v in ["0", "-5", "16777217", "abc", "", "2.5"]]
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
