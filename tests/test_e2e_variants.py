"""Variants of each rule, default policy, gate open: every syscall of each family,
every way to make an fd, sparse fds, threads, TCP without TCP_NODELAY, UDP, the
exec reset, renamed threads, non-targets, and the write after the 100th."""
import pytest

import killer as K

CHUNK = 1  # bytes per write: oomp_work writes one byte a call unless -c
WRITE_SYSCALLS = ["write", "pwrite64", "writev", "pwritev", "pwritev2"]
READ_SYSCALLS = ["read", "pread64", "readv", "preadv", "preadv2"]
FD_PATHS = ["open", "openat", "openat2", "creat", "socket", "socketpair", "pipe", "pipe2",
            "dup", "dup2", "dup3", "fcntl-dupfd", "fcntl-dupfd-cloexec", "accept", "accept4",
            "eventfd", "memfd", "epoll", "timerfd", "inotify", "signalfd", "pidfd"]


def assert_killed_for(killer, res, rule):
    assert res.killed, f"expected SIGKILL for {rule}: {res.describe()}"
    ev = killer.wait_event(pid=res.pid, kind="kill")
    assert ev is not None, f"no kill event for {res.pid}: {killer.events[-5:]}"
    assert K.rule_key(ev["rule"]) == K.rule_key(rule), ev
    return ev


def assert_lived(killer, res):
    assert res.ok, f"expected exit 0: {res.describe()}"
    assert not killer.find_events(pid=res.pid), killer.find_events(pid=res.pid)


# ---- writes ----

@pytest.mark.parametrize("syscall", WRITE_SYSCALLS)
def test_every_write_syscall_counts(default_killer, bystander, syscall):
    res = K.work(syscall, 100, out=True)
    assert_killed_for(default_killer, res, "writes")
    assert res.out_size == 100 * CHUNK, res.describe()
    assert res.progress[K.P_DONE] == 99, res.describe()


@pytest.mark.parametrize("syscall", WRITE_SYSCALLS)
def test_every_write_syscall_below_lives(default_killer, bystander, syscall):
    res = K.work(syscall, 99, out=True)
    assert_lived(default_killer, res)
    assert res.out_size == 99 * CHUNK, res.describe()


def test_victim_completes_no_write_after_its_100th(default_killer, bystander):
    res = K.work("write", 150, out=True)
    ev = assert_killed_for(default_killer, res, "writes")
    assert ev["value"] == 100, ev
    # the 100th write reached the file; the store right after it never ran
    assert res.out_size == 100 * CHUNK, res.describe()
    assert res.progress[K.P_DONE] == 99, res.describe()


# ---- reads ----

@pytest.mark.parametrize("syscall", READ_SYSCALLS)
def test_every_read_syscall_counts(default_killer, bystander, syscall):
    res = K.work(syscall, 10 * K.MiB, "--total")
    assert_killed_for(default_killer, res, "read-bytes")
    assert res.progress[K.P_BASE] + res.progress[K.P_DONE] < 10 * K.MiB, res.describe()


@pytest.mark.parametrize("syscall", READ_SYSCALLS)
def test_every_read_syscall_below_lives(default_killer, bystander, syscall):
    res = K.work(syscall, 10 * K.MiB - 1, "--total")
    assert_lived(default_killer, res)


def test_reads_count_bytes_not_calls(default_killer, bystander):
    # 10 MiB in 1 MiB reads: 10 calls, far below any call count, and it dies
    res = K.work("read", 10 * K.MiB, "--total", "-c", K.MiB)
    assert_killed_for(default_killer, res, "read-bytes")


# ---- fds ----

@pytest.mark.parametrize("path", FD_PATHS)
def test_every_fd_path_counts(default_killer, bystander, path):
    res = K.work(path, 100, "--total")
    ev = assert_killed_for(default_killer, res, "fds")
    assert ev["value"] == 100, ev


@pytest.mark.parametrize("path", ["openat", "socketpair", "pipe", "accept", "dup3", "eventfd"])
def test_fd_path_below_lives(default_killer, bystander, path):
    res = K.work(path, 99, "--total")
    assert_lived(default_killer, res)


def test_sparse_fds_count_by_number_open(default_killer, bystander):
    # 100 fds in the table, numbered 0,1,2 and then 1000, 1037, ... 4552
    res = K.work("dup2-high", 100, "--total", "--base", 1000, "--stride", 37)
    ev = assert_killed_for(default_killer, res, "fds")
    assert ev["value"] == 100, ev


def test_sparse_fds_below_lives(default_killer, bystander):
    res = K.work("dup2-high", 99, "--total", "--base", 1000, "--stride", 37)
    assert_lived(default_killer, res)


def test_highest_fd_number_is_not_the_count(default_killer, bystander):
    # a handful of fds, one of them numbered 5000
    res = K.work("dup2-high", 1, "--base", 5000)
    assert_lived(default_killer, res)


def test_fds_stay_a_level_across_exec(default_killer, bystander):
    # exec resets the counters, but fds are read from the table, which exec
    # keeps: 60 fds, exec, 60 more in the new image = 120 open: dies there.
    res = K.work("openat", 60, "--exec-reset")
    assert_killed_for(default_killer, res, "fds")
    assert res.progress[K.P_IMAGE] == 1, res.describe()


# ---- threads ----

def test_threads_one_by_one_count_cumulatively(default_killer, bystander):
    res = K.work("threads", 100)
    ev = assert_killed_for(default_killer, res, "threads")
    assert ev["value"] == 100, ev


def test_threads_concurrent_count(default_killer, bystander):
    res = K.work("threads", 100, "--concurrent")
    assert_killed_for(default_killer, res, "threads")


def test_threads_concurrent_below_lives(default_killer, bystander):
    res = K.work("threads", 99, "--concurrent")
    assert_lived(default_killer, res)


def test_renamed_threads_still_count_for_the_process(default_killer, bystander):
    res = K.work("threads", 100, "--rename", "plainthr")
    ev = assert_killed_for(default_killer, res, "threads")
    assert ev["comm"] == "oomp_work", ev


def test_writes_from_a_renamed_thread_count(default_killer, bystander):
    res = K.work("write", 100, "--in-thread", "--rename", "plainthr", out=True)
    ev = assert_killed_for(default_killer, res, "writes")
    assert ev["comm"] == "oomp_work", ev
    assert res.out_size == 100 * CHUNK, res.describe()


# ---- tcp / udp ----

def test_tcp_without_nodelay_counts_each_send(default_killer, bystander):
    # Nagle and autocorking merge these into fewer segments; each send still counts
    res = K.work("tcp-send", 1000, "-c", 16)
    ev = assert_killed_for(default_killer, res, "tcp-packets")
    assert ev["value"] == 1000, ev
    assert res.progress[K.P_DONE] == 999, res.describe()


def test_tcp_without_nodelay_below_lives(default_killer, bystander):
    res = K.work("tcp-send", 999, "-c", 16)
    assert_lived(default_killer, res)


def test_udp_never_counts(default_killer, bystander):
    res = K.work("udp-send", 3000, "-c", 16)
    assert_lived(default_killer, res)


# ---- rand ----

def test_rand_from_a_thread_counts(default_killer, bystander):
    res = K.work("rand", 100, "--in-thread")
    assert_killed_for(default_killer, res, "rand")
    assert res.progress[K.P_DONE] == 99, res.describe()


# ---- exec ----

def test_exec_resets_counters(default_killer, bystander):
    res = K.work("write", 60, "--exec-reset", out=True)
    assert_lived(default_killer, res)
    assert res.progress[K.P_IMAGE] == 1 and res.progress[K.P_TOTAL] == 120, res.describe()
    assert res.out_size == 120 * CHUNK, res.describe()


# ---- non-targets ----

NON_TARGET_CASES = [
    ["open", 150, "--total"],
    ["dup2-high", 150, "--base", 1000, "--stride", 7],
    ["write", 150],
    ["pwritev2", 150],
    ["read", 11 * K.MiB],
    ["preadv2", 11 * K.MiB],
    ["threads", 150],
    ["rand", 150],
    ["tcp-send", 1500],
    ["all", 0],
]


@pytest.fixture(scope="module")
def plainwork(tmp_path_factory):
    return K.plain_copy(tmp_path_factory.mktemp("nontarget"))


@pytest.mark.parametrize("args", NON_TARGET_CASES, ids=lambda a: str(a[0]))
def test_non_target_crossing_limits_lives(default_killer, bystander, plainwork, args):
    res = K.work(*args, prog=plainwork)
    assert_lived(default_killer, res)


# ---- what counts as a target's name ----

@pytest.mark.parametrize("name,target", [
    ("my_oomp_app", True),              # substring anywhere
    ("OOMPwork", False),                # case-sensitive
    ("abcdefghijklmnop_oomp", False),   # comm keeps 15 bytes: "abcdefghijklmno"
    ("abcdefghijkoomp_x", True),        # "oomp" ends at byte 15: still in comm
])
def test_target_name_is_a_substring_of_comm(default_killer, bystander, tmp_path, name, target):
    named = K.plain_copy(tmp_path, name)
    res = K.work("write", 150, prog=named)
    if target:
        ev = assert_killed_for(default_killer, res, "writes")
        assert ev["comm"] == name[:15], ev
    else:
        assert_lived(default_killer, res)


def test_bystander_survived_the_module(default_killer, bystander):
    assert bystander.alive(), "a compliant sleeping target died"
    assert not default_killer.find_events(pid=bystander.pid)
    assert default_killer.running(), "killer exited early:\n" + default_killer.stderr_text()
