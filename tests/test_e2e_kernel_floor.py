"""Every kernel Debian supports (issue 19): oomkiller starts, and `selftest`
proves each rule the kernel can enforce and names each it can't, with why,
and then each selector kind (name, exe, cgroup, user, scope = tree).

What the running kernel offers is read here with bpftool from its BTF, not
from the loader: bpf_send_signal_task (6.13) decides who sends the deferred
kills, the sock_send_length event (6.3) whether the TCP rule can run. Runs on
this machine (which has both) and in the VM lane's guests, Debian 12's 6.1
and Debian 13's 6.12 among them (`make test-vm-floor`).
"""
from __future__ import annotations

import re
import subprocess

import killer as K

RULES = ["fds", "writes", "read-bytes", "threads", "rand", "tcp-packets"]
SELECTORS = ["name", "exe", "cgroup", "user", "tree"]


def vmlinux_btf() -> str:
    return subprocess.run(["bpftool", "btf", "dump", "file", "/sys/kernel/btf/vmlinux"],
                          check=True, capture_output=True, text=True).stdout


def test_selftest_proves_each_rule_this_kernel_offers_and_names_the_others(e2e_session):
    btf = vmlinux_btf()
    signal_task = re.search(r"^\[\d+\] FUNC 'bpf_send_signal_task' ", btf, re.M) is not None
    sock_tp = re.search(r"^\[\d+\] TYPEDEF 'btf_trace_sock_send_length' ", btf, re.M) is not None
    before = K.bpf_prog_ids()
    res = subprocess.run([str(K.OOMKILLER), "selftest"], capture_output=True, text=True,
                         timeout=900, stdin=subprocess.DEVNULL)
    print(res.stdout)
    assert res.returncode == 0, res
    rows = {line.split()[0]: line for line in res.stdout.splitlines()[1:] if line.split()
            and line.split()[0] in RULES}
    assert sorted(rows) == sorted(RULES), res.stdout
    for rule, row in rows.items():
        if rule == "tcp-packets" and not sock_tp:
            assert row.split()[1] == "off", row
            assert row.endswith("this kernel can't: no sock_send_length tracepoint "
                                "(Linux 6.3+)"), row
        else:
            assert row.split()[3:6] == ["yes", "yes", "yes"], row
    loader_sends = ("kernel: deferred kills sent by the loader: no bpf_send_signal_task "
                    "(Linux 6.13+)")
    assert (loader_sends in res.stdout.splitlines()) == (not signal_task), res.stdout
    # Then each selector kind, a private policy each in the same killer.
    selected = {line.split()[1]: line.split()[2] for line in res.stdout.splitlines()
                if line.startswith("selector ")}
    assert selected == dict.fromkeys(SELECTORS, "ok"), res.stdout
    assert res.stdout.splitlines()[-1] == "every rule and selector holds", res.stdout
    # A closed program's id goes once the kernel has freed it (RCU): soon.
    K.wait_until(lambda: K.bpf_prog_ids() <= before, 30)
    assert K.bpf_prog_ids() <= before, "nothing may stay loaded"
