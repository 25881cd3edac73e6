"""rand() in every C library a target maps (issue 18): a copy of glibc, one
replaced on disk the way dpkg replaces it, one in the target's own mount
namespace, musl, a static program; and the warning for a stripped one.

Each of these files is new to the killer when the target first maps it: the
target is held (stopped) until the uprobe is on the file, so even calls made
at once after exec are counted. `oomp_rand N` calls rand() N times.
"""
import os
import shutil
import subprocess
from pathlib import Path

import pytest

import killer as K

LIMIT = 100
GLIBC = Path("/lib/x86_64-linux-gnu/libc.so.6")


def _dies_at_the_limit(k: K.Killer, prog, *args, env=None) -> K.Result:
    res = _run(prog, LIMIT + 50, *args, env=env)
    assert res.killed, f"{LIMIT + 50} rand() calls must die: {res.describe()}"
    ev = k.wait_event(pid=res.pid, kind="kill")
    assert ev is not None, f"no kill event for {res.pid}: {k.events[-5:]}"
    assert K.rule_key(ev["rule"]) == "rand" and ev["value"] == LIMIT, ev
    return res


def _lives_below(k: K.Killer, prog, *args, env=None) -> None:
    res = _run(prog, LIMIT - 1, *args, env=env)
    assert res.ok, f"{LIMIT - 1} rand() calls must live: {res.describe()}"
    assert f"done rand {LIMIT - 1}" in res.stdout, res.describe()
    assert not k.find_events(pid=res.pid, kind="kill"), k.find_events(pid=res.pid)


def _run(prog, n, *wrap, env=None) -> K.Result:
    """prog N, through the argv prefix `wrap` (e.g. unshare ...) if given."""
    if wrap:
        exe, args = shutil.which(wrap[0]), [*wrap[1:], str(K.prog_path(prog)), str(n)]
    else:
        exe, args = prog, [str(n)]
    old = {k: os.environ.get(k) for k in (env or {})}
    os.environ.update(env or {})
    try:
        return K.run(exe, *args)
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _all_at_once(argvs) -> tuple[list, list]:
    """Start every argv at once, wait for all: (Popens, exit codes); none outlives it."""
    procs = []
    try:
        procs = [subprocess.Popen(argv, stdout=subprocess.DEVNULL) for argv in argvs]
        return procs, [p.wait(timeout=60) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()


@pytest.fixture(scope="module")
def libdir(tmp_path_factory):
    """A directory holding a copy of the host's glibc (a new inode)."""
    d = tmp_path_factory.mktemp("libc")
    shutil.copy2(GLIBC, d / "libc.so.6")
    return d


def test_static_program_with_symbols(default_killer):
    """Held once, the first time it runs (its own text is new), never again."""
    holds = default_killer.status()["holds"]
    _lives_below(default_killer, "oomp_rand_static")
    assert default_killer.status()["holds"] == holds + 1
    _dies_at_the_limit(default_killer, "oomp_rand_static")
    assert default_killer.status()["holds"] == holds + 1


def test_musl_program(default_killer):
    _lives_below(default_killer, "oomp_rand_musl")
    _dies_at_the_limit(default_killer, "oomp_rand_musl")


def test_a_copy_of_glibc(default_killer, libdir):
    env = {"LD_LIBRARY_PATH": str(libdir)}
    _lives_below(default_killer, "oomp_rand", env=env)
    _dies_at_the_limit(default_killer, "oomp_rand", env=env)


def test_glibc_replaced_on_disk_as_dpkg_does(default_killer, libdir):
    """The same path, a new inode: cp -p to .dpkg-new, then rename over."""
    env = {"LD_LIBRARY_PATH": str(libdir)}
    _dies_at_the_limit(default_killer, "oomp_rand", env=env)
    before = (libdir / "libc.so.6").stat().st_ino
    subprocess.run(["cp", "-p", GLIBC, libdir / "libc.so.6.dpkg-new"], check=True)
    subprocess.run(["mv", "-f", libdir / "libc.so.6.dpkg-new", libdir / "libc.so.6"], check=True)
    assert (libdir / "libc.so.6").stat().st_ino != before
    _dies_at_the_limit(default_killer, "oomp_rand", env=env)


def test_glibc_of_another_mount_namespace(default_killer, tmp_path):
    """A container's view: in its own mount namespace the target's
    /lib/x86_64-linux-gnu/libc.so.6 is another file, never seen before."""
    shutil.copy2(GLIBC, tmp_path / "libc.so.6")
    script = f"mount --bind {tmp_path / 'libc.so.6'} {GLIBC} && exec \"$0\" \"$@\""
    wrap = ("unshare", "--mount", "--propagation", "private", "sh", "-c", script)
    _dies_at_the_limit(default_killer, "oomp_rand", *wrap)


def test_a_non_target_is_never_held(default_killer, tmp_path):
    """A static program whose name lacks the substring runs unheld: the
    killer's hold count does not move, and it finishes."""
    plain = tmp_path / "plainrand_static"
    shutil.copy2(K.prog_path("oomp_rand_static"), plain)
    holds = default_killer.status()["holds"]
    res = K.run(plain, str(LIMIT + 50))
    assert res.ok, res.describe()
    assert default_killer.status()["holds"] == holds, default_killer.status()
    # The same file under a target's name (a hard link: one inode) is new to
    # the killer: the non-target's run never even looked at it.
    os.link(plain, tmp_path / "oomp_rand_link")
    _dies_at_the_limit(default_killer, tmp_path / "oomp_rand_link")
    assert default_killer.status()["holds"] == holds + 1, default_killer.status()


def test_a_stripped_static_program_is_warned_once(default_killer):
    """Its rand() can't be probed: one warn line naming it, however often it runs."""
    for _ in range(2):
        res = _run("oomp_rand_stripped", LIMIT + 50)
        assert res.ok, res.describe()  # not countable, so not killed
    name = str(K.prog_path("oomp_rand_stripped"))
    lines = [ln for ln in default_killer.stderr_text().splitlines() if name in ln]
    assert len(lines) == 1 and "static program without symbols" in lines[0], lines
    assert default_killer.status()["rand_unprobeable"] == 1, default_killer.status()


def test_a_burst_of_targets_held_for_one_new_file(default_killer, tmp_path):
    """40 targets exec a never-seen static program at once: each is held
    (the file is read once), each resumed, each dies at exactly its 100th
    call; then 40 more below the limit all live."""
    prog = tmp_path / "oomp_rand_burst"
    shutil.copy2(K.prog_path("oomp_rand_static"), prog)
    holds = default_killer.status()["holds"]
    for n, want_killed in ((LIMIT + 50, True), (LIMIT - 1, False)):
        procs, codes = _all_at_once([[prog, str(n)]] * 40)
        if want_killed:
            assert codes == [-9] * 40, codes
            for p in procs:
                ev = default_killer.wait_event(pid=p.pid, kind="kill")
                assert ev is not None and ev["value"] == LIMIT, (p.pid, ev)
        else:
            assert codes == [0] * 40, codes
    assert holds < default_killer.status()["holds"] <= holds + 40


def test_forty_new_files_at_once_are_each_held_once(default_killer, tmp_path):
    """40 targets, each exec'ing its own never-seen copy of a static program,
    at once: BPF checks an exec's first mapping in two programs (tp_btf and
    classic), and the loader settles files while others are still exec'ing.
    Each target is held exactly once (never again after its hold was taken),
    resumed, and lives below the limit."""
    progs = []
    for i in range(40):
        progs.append(tmp_path / f"oomp_rand_own{i}")
        shutil.copy2(K.prog_path("oomp_rand_static"), progs[-1])
    holds = default_killer.status()["holds"]
    _, codes = _all_at_once([[p, str(LIMIT - 1)] for p in progs])
    assert codes == [0] * 40, codes
    assert default_killer.status()["holds"] == holds + 40, default_killer.status()
