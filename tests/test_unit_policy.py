"""Unit tests for policies (issue 20): `[policy NAME]` sections in the config
file, their selectors resolved against this machine (a real file, a real
cgroup, a real user), the errors, each one line naming file and line, and
what `oomkiller check` and the daemon's start make of them. No BPF."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from oomkiller.commands import check, cli  # noqa: E402
from oomkiller.config import options, selectors  # noqa: E402
from oomkiller.config.config import ConfigError, parse_config  # noqa: E402
from oomkiller.config.policy import MAX_POLICIES, Policy  # noqa: E402
from oomkiller.config.rules import OFF, RULES  # noqa: E402
from oomkiller.config.settings import Settings  # noqa: E402
from oomkiller.messages import UsageError  # noqa: E402

G = 1 << 30
DEFAULT_LIMITS = tuple(r.default for r in RULES)
LIMIT_KEYS = tuple(r.option for r in RULES)
OOMKILLER = ROOT / "oomkiller"


def write(tmp_path: Path, text: str, name: str = "p.conf") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def load(tmp_path: Path, text: str, *argv: str) -> Settings:
    """What the daemon starts with (and SIGHUP re-reads, and check shows)."""
    return options.settings_from(["--config", write(tmp_path, text), *argv])


def error(tmp_path: Path, text: str, *argv: str) -> tuple[str, str]:
    """(PATH, the one-line message) of a config that must be refused."""
    path = write(tmp_path, text)
    with pytest.raises((ConfigError, UsageError)) as e:
        options.settings_from(["--config", path, *argv])
    message = str(e.value)
    assert "\n" not in message
    return path, message


# -- fixtures: a real user, a real cgroup --------------------------------------------

@pytest.fixture
def user():
    """A system user, `oomkt` and a random tail, removed afterwards: (name, uid)."""
    if os.geteuid() != 0:
        pytest.skip("useradd needs root")
    name = "oomkt" + uuid.uuid4().hex[:8]
    subprocess.run(["useradd", "--system", "--no-create-home", name], check=True,
                   capture_output=True, timeout=30)
    try:
        import pwd
        yield name, pwd.getpwnam(name).pw_uid
    finally:
        subprocess.run(["userdel", name], capture_output=True, timeout=30)


@pytest.fixture
def cgroup():
    """A cgroup made under the cgroup2 mount, removed afterwards: (mount, "/oomkt-…")."""
    mount = selectors.cgroup2_mount()
    if mount is None:
        pytest.skip("no cgroup2 mount")
    rel = "/oomkt-" + uuid.uuid4().hex[:8]
    try:
        os.mkdir(mount + rel)
    except OSError as e:
        pytest.skip(f"cannot make a cgroup under {mount}: {e.strerror}")
    try:
        yield mount, rel
    finally:
        os.rmdir(mount + rel)


# -- the form of a section ------------------------------------------------------------

def test_sections_are_read_in_file_order():
    c = parse_config("max-fds = 5\n"
                     "[policy ci]   # comment\n"
                     "name = ci\n"
                     "max-threads = 2000\n"
                     "\n"
                     "[ policy b.2_x-Y ]\n"
                     "user = 0\n", "t.conf")
    assert dict(c) == {"max-fds": "5"} and c.lines == {"max-fds": 1}
    assert [(s.name, s.line, s.values, s.lines) for s in c.sections] == [
        ("ci", 2, {"name": "ci", "max-threads": "2000"}, {"name": 3, "max-threads": 4}),
        ("b.2_x-Y", 6, {"user": "0"}, {"user": 7})]
    assert c.sections[0].where("max-threads") == "t.conf:4"
    assert c.sections[0].where() == "t.conf:2"


FORM_ERRORS = [
    # (text, line, the message after PATH:LINE: )
    ("[oomkiller]\n", 1, "not `key = value` or `[policy NAME]`: '[oomkiller]'"),
    ("[policy]\n", 1, "not `key = value` or `[policy NAME]`: '[policy]'"),
    ("[policy a b]\n", 1, "not `key = value` or `[policy NAME]`: '[policy a b]'"),
    ("[policy ci\n", 1, "not `key = value` or `[policy NAME]`: '[policy ci'"),
    ("[policy default]\nname = x\n", 1,
     "'default' is reserved: the top-level lines make the default policy: "
     "give this one another name"),
    ("[policy " + "x" * 33 + "]\n", 1, "bad policy name '" + "x" * 33
     + "': use 1-32 letters, digits, '_', '.' or '-'"),
    ("[policy a/b]\n", 1, "bad policy name 'a/b': use 1-32 letters, digits, '_', '.' or '-'"),
    ("[policy ci]\nname = x\nmax-fd = 3\n", 3,
     "unknown key 'max-fd' in a [policy]: did you mean 'max-fds'?"),
    ("[policy ci]\nname = x\nbogus = 3\n", 3, "unknown key 'bogus' in a [policy]: keys are "
     "name, exe, cgroup, unit, user, max-fds, max-writes, max-read, max-threads, max-rand, "
     "max-tcp-packets, min-used, dry-run, scope"),
    ("[policy ci]\nname = x\ninterval = 2\n", 3,
     "'interval' is a global setting: put it before the first [policy]"),
    ("[policy ci]\nname = x\ndefault-policy = off\n", 3,
     "'default-policy' is a global setting: put it before the first [policy]"),
    ("[policy ci]\nconfig = x\n", 2, "'config' is a command-line option only: remove it"),
    ("[policy ci]\nname = x\nmax-fds = 1\nmax-fds = 2\n", 4,
     "'max-fds' set again (first on line 4): keep one"),
    ("[policy ci]\nname = x\n[policy ci]\nname = y\n", 3,
     "[policy ci] again (first on line 2): give each policy its own name"),
    ("[policy ci]\nname = x\ndry-run = maybe\n", 3, "not a boolean: 'maybe'"),
    ("[policy ci]\nname =\n", 2, "name: empty value"),
]


@pytest.mark.parametrize("text,line,message", FORM_ERRORS)
def test_form_errors_name_file_and_line(tmp_path, text, line, message):
    path, got = error(tmp_path, "max-fds = 50\n" + text)
    assert got.startswith(f"{path}:{line + 1}: {message}"), got


# -- values and what a section leaves unset --------------------------------------------

def test_unset_settings_are_built_in_defaults_not_the_top_level(tmp_path):
    s = load(tmp_path, "max-fds = 7\nmin-used = 0\ndry-run = yes\nmax-read = 1M\n"
             "[policy ci]\nname = ci\nmax-threads = 2000\n")
    (ci,) = s.named_policies
    limits = list(DEFAULT_LIMITS)
    limits[RULES[3].id] = 2000
    assert ci.limits == tuple(limits)
    assert (ci.min_used, ci.dry_run, ci.scope, ci.comm) == (G, False, "process", "ci")
    path = str(tmp_path / "p.conf")
    assert ci.origin == {"name": f"{path}:6", "max-threads": f"{path}:7",
                         **{k: "default" for k in LIMIT_KEYS if k != "max-threads"},
                         "min-used": "default", "dry-run": "default", "scope": "default"}
    # the top level is the default policy's, as before
    assert s.limits[RULES[0].id] == 7 and s.min_used == 0 and s.dry_run


def test_every_value_of_a_section(tmp_path):
    s = load(tmp_path, "[policy all]\nname = ci\nmax-fds = off\nmax-writes = 5\n"
             "max-read = 1.5G\nmax-threads = 9\nmax-rand = 18446744073709551614\n"
             "max-tcp-packets = OFF\nmin-used = 0\ndry-run = on\nscope = tree\n")
    (p,) = s.named_policies
    assert p.limits == (OFF, 5, 3 * G // 2, 9, OFF - 1, OFF)
    assert (p.min_used, p.dry_run, p.scope) == (0, True, "tree")
    assert p.limits_text() == ("min-used=0B fds=off writes=5 read-bytes=1.5G threads=9 "
                               "rand=18446744073709551614 tcp-packets=off scope=tree dry-run")


VALUE_ERRORS = [
    # (section body after `[policy x]` and `name = x`, the message after PATH:LINE: )
    ("max-fds = 0", "max-fds: must be at least 1, got '0' (or off)"),
    ("max-fds = ５", "max-fds: '５' is not plain ASCII (U+FF15): type the digits 0-9 (or off)"),
    ("max-read = 1.5B", "max-read: '1.5B' is not a whole number of bytes: round it (or off)"),
    ("max-threads = 18446744073709551615",
     "max-threads: '18446744073709551615' is too large: at most 18446744073709551614 (or off)"),
    ("min-used = off", "min-used: 'off'"),
    ("scope = forest", "scope: 'forest': use process or tree"),
    ("scope = Tree", "scope: 'Tree': use process or tree"),
]


@pytest.mark.parametrize("body,message", VALUE_ERRORS)
def test_value_errors_name_file_and_line(tmp_path, body, message):
    path, got = error(tmp_path, f"max-fds = 5\n[policy x]\nname = x\n{body}\n")
    assert got.startswith(f"{path}:4: {message}"), got


@pytest.mark.parametrize("value,message", [
    ("sixteen-bytes-xx", "name: at most 15 bytes (a process name is 15), got 16"),
])
def test_name_is_checked_as_the_option_is(tmp_path, value, message):
    path, got = error(tmp_path, f"[policy x]\nname = {value}\n")
    assert got == f"{path}:2: {message}"


def test_a_section_needs_a_selector(tmp_path):
    path, got = error(tmp_path, "# x\n[policy ci]\nmax-fds = 5\n[policy b]\nname = b\n")
    assert got == (f"{path}:2: [policy ci] has no selector: add one of "
                   "name, exe, cgroup, unit, user")


def test_a_section_with_every_limit_off_is_refused(tmp_path):
    offs = "".join(f"{k} = off\n" for k in LIMIT_KEYS)
    path, got = error(tmp_path, f"[policy ci]\nname = x\n{offs}")
    assert got == (f"{path}:1: [policy ci] has every limit off: it would never act: "
                   "set a limit, or remove the section")
    # one left on is fine
    s = load(tmp_path, "[policy ci]\nname = x\n" + offs.replace("max-rand = off\n", ""))
    assert s.named_policies[0].enabled() == {"rand"}


def test_unit_and_cgroup_in_one_section(tmp_path):
    path, got = error(tmp_path, "[policy ci]\ncgroup = /\nname = x\nunit = a.service\n")
    assert got == f"{path}:4: unit and cgroup in one policy: pick one (a unit is its cgroup)"


# -- selectors ----------------------------------------------------------------------

def test_exe_is_the_file_s_kernel_device_and_inode(tmp_path):
    prog = tmp_path / "prog"
    prog.write_bytes(b"\x7fELF")
    link = tmp_path / "link"
    link.symlink_to(prog)
    s = load(tmp_path, f"[policy a]\nexe = {prog}\n[policy b]\nexe = {link}\n")
    st = os.stat(prog)
    want = (os.major(st.st_dev) << 20 | os.minor(st.st_dev), st.st_ino)
    a, b = s.named_policies
    assert (a.exe, a.exe_id) == (str(prog), want)
    assert (b.exe, b.exe_id) == (str(link), want), "a symlink is followed"
    assert a.selector_text() == f"exe={prog}"


def test_kernel_dev_is_mkdev():
    assert selectors.kernel_dev(os.makedev(8, 1)) == 8 << 20 | 1
    assert selectors.kernel_dev(os.makedev(259, 70000)) == 259 << 20 | 70000


def test_bad_exe(tmp_path):
    for value, message in [
            (str(tmp_path / "absent"), f"no such file: '{tmp_path}/absent': "
                                       "give the program's full path"),
            (str(tmp_path), f"not a regular file: '{tmp_path}': name the program itself"),
            ("/dev/null", "not a regular file: '/dev/null'"),
            ("bin/sh", "not an absolute path: 'bin/sh': give the program's full path")]:
        path, got = error(tmp_path, f"[policy a]\nname = x\nexe = {value}\n")
        assert got.startswith(f"{path}:3: exe: {message}"), got


def test_cgroup_forms(tmp_path, cgroup):
    mount, rel = cgroup
    forms = [rel, rel[1:], rel + "/", mount + rel, mount + rel + "/", "/" + rel + "//."]
    text = "".join(f"[policy p{i}]\ncgroup = {f}\n" for i, f in enumerate(forms))
    text += f"[policy root]\ncgroup = /\n[policy mount]\ncgroup = {mount}\n"
    s = load(tmp_path, text)
    assert [p.cgroup for p in s.named_policies] == [rel] * len(forms) + ["/", "/"]
    assert [p.cgroup_level for p in s.named_policies][-3:] == [1, 0, 0]
    assert s.named_policies[0].selector_text() == f"cgroup={rel}"


def test_normalize_cgroup_is_pure():
    n = selectors.normalize_cgroup
    assert n("/a/b", "/sys/fs/cgroup") == "/a/b"
    assert n("a/b/", "/sys/fs/cgroup") == "/a/b"
    assert n("/sys/fs/cgroup/a/b", "/sys/fs/cgroup") == "/a/b"
    assert n("/sys/fs/cgroup", "/sys/fs/cgroup/") == "/"
    assert n("/sys/fs/cgroupx/a", "/sys/fs/cgroup") == "/sys/fs/cgroupx/a"
    with pytest.raises(ValueError, match=r"'\.\.' in '/a/\.\./b'"):
        n("/a/../b", "/sys/fs/cgroup")
    with pytest.raises(ValueError, match="longer than 127 bytes"):
        n("/" + "a" * 127, "/sys/fs/cgroup")
    assert n("/" + "a" * 126, "/sys/fs/cgroup") == "/" + "a" * 126


def test_cgroup2_mount_is_read_from_mountinfo(tmp_path):
    info = tmp_path / "mountinfo"
    info.write_text("22 1 0:21 / /sys rw - sysfs sysfs rw\n"
                    "30 22 0:26 / /sys/fs/cgroup ro - tmpfs tmpfs ro\n"
                    "41 30 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n")
    assert selectors.cgroup2_mount(str(info)) == "/sys/fs/cgroup/unified"
    info.write_text("41 30 0:38 / /mnt/my\\040cg rw shared:5 - cgroup2 none rw\n")
    assert selectors.cgroup2_mount(str(info)) == "/mnt/my cg"
    info.write_text("22 1 0:21 / /sys rw - sysfs sysfs rw\n")
    assert selectors.cgroup2_mount(str(info)) is None
    assert selectors.cgroup2_mount(str(tmp_path / "absent")) is None


def test_a_cgroup_that_does_not_exist(tmp_path, cgroup):
    mount, rel = cgroup
    path, got = error(tmp_path, f"[policy a]\nname = x\ncgroup = {rel}/absent\n")
    assert got == (f"{path}:3: cgroup: no such cgroup: '{rel}/absent' (under {mount}): "
                   "create it, or check the path")
    info = tmp_path / "mountinfo"
    info.write_text("22 1 0:21 / /sys rw - sysfs sysfs rw\n")
    with pytest.raises(ValueError, match="no cgroup2 file system is mounted: mount one"):
        selectors.resolve_cgroup(rel, str(info))


def test_user_name_and_uid(tmp_path, user):
    name, uid = user
    s = load(tmp_path, f"[policy a]\nuser = {name}\n[policy b]\nuser = {uid}\n"
             "[policy c]\nuser = 4294967294\n[policy d]\nuser = 0\n")
    assert [(p.user, p.uid) for p in s.named_policies] == [
        (name, uid), (str(uid), uid), ("4294967294", 4294967294), ("0", 0)]
    assert s.named_policies[0].selector_text() == f"user={name} ({uid})"
    assert s.named_policies[1].selector_text() == f"user={uid}"


@pytest.mark.parametrize("value,message", [
    ("4294967295", "uid 4294967295 is too large: at most 4294967294"),
    ("oomkt-nobody-here", "no such user: 'oomkt-nobody-here': create it, or give a uid"),
    ("-1", "no such user: '-1'"),
    ("１", "no such user: '１'"),
])
def test_bad_user(tmp_path, value, message):
    path, got = error(tmp_path, f"[policy a]\nname = x\nuser = {value}\n")
    assert got.startswith(f"{path}:3: user: {message}"), got


def test_unit_here_says_systemd_is_not_running(tmp_path):
    if selectors.systemd_running():
        pytest.skip("systemd runs here: the systemd guest tests unit resolution")
    path, got = error(tmp_path, "# ci\n[policy ci]\nunit = ci-runner.service\n")
    assert got == (f"{path}:3: unit: systemd is not running (/run/systemd/system is missing), "
                   "so 'ci-runner.service' is no unit: select by cgroup instead")


@pytest.mark.parametrize("value,message", [
    ("ci-runner", "not a unit name: 'ci-runner': write it in full, such as ci-runner.service"),
    ("a b.service", "not a unit name: 'a b.service'"),
    ("x.nope", "not a unit name: 'x.nope'"),
    ("multi-user.target", "a .target unit runs no processes: name a .service, .scope, "
                          ".slice, .socket, .mount, .swap unit"),
    ("getty@.service", "'getty@.service' is a template: name an instance, such as "
                       "'getty@1.service'"),
])
def test_bad_unit_names(tmp_path, value, message):
    path, got = error(tmp_path, f"[policy a]\nunit = {value}\n")
    assert got.startswith(f"{path}:2: unit: {message}"), got


def test_slice_path():
    assert selectors.slice_path("-.slice") == "/"
    assert selectors.slice_path("system.slice") == "/system.slice"
    assert selectors.slice_path("a-b.slice") == "/a.slice/a-b.slice"
    assert selectors.slice_path("user-1000.slice") == "/user.slice/user-1000.slice"
    assert selectors.slice_path("a-b-c.slice") == "/a.slice/a-b.slice/a-b-c.slice"


def test_unit_cgroup():
    u = selectors.unit_cgroup
    assert u("ci.service", "/system.slice/ci.service", "system.slice") == \
        "/system.slice/ci.service"
    assert u("ci.service", "", "ci-jobs.slice") == "/ci.slice/ci-jobs.slice/ci.service"
    assert u("ci.service", "", "-.slice") == "/ci.service"
    assert u("ci.service", "", "") == "/system.slice/ci.service"
    assert u("a-b.slice", "", "") == "/a.slice/a-b.slice"


def test_resolve_unit_asks_systemctl_for_what_it_knows():
    asked = []

    def show(answers):
        def f(unit, prop):
            asked.append((unit, prop))
            return answers.get(prop, "")
        return f

    running = lambda: True  # noqa: E731
    assert selectors.resolve_unit("ci.service", running, show(
        {"ControlGroup": "/system.slice/ci.service"})) == "/system.slice/ci.service"
    assert asked == [("ci.service", "ControlGroup")]
    assert selectors.resolve_unit("ci.service", running, show(
        {"Slice": "ci-jobs.slice"})) == "/ci.slice/ci-jobs.slice/ci.service"
    assert selectors.resolve_unit("ci.service", running, show({})) == \
        "/system.slice/ci.service"
    with pytest.raises(ValueError, match="longer than 127 bytes"):
        selectors.resolve_unit("ci.service", running, show({"ControlGroup": "/" + "a" * 200}))


# -- how many, and default-policy ---------------------------------------------------

def sections(n: int) -> str:
    return "".join(f"[policy p{i}]\nname = p{i}\n" for i in range(n))


def test_at_most_64_policies_counting_default(tmp_path):
    s = load(tmp_path, sections(MAX_POLICIES - 1))
    assert len(s.policies) == MAX_POLICIES and s.policies[-1].name == "default"
    path, got = error(tmp_path, "max-fds = 5\n" + sections(MAX_POLICIES))
    # the 64th section's header: with default, that makes 65
    assert got == (f"{path}:{2 + 2 * (MAX_POLICIES - 1)}: more than {MAX_POLICIES} policies, "
                   "counting default: set default-policy = off, or merge some")
    s = load(tmp_path, "default-policy = off\n" + sections(MAX_POLICIES))
    assert len(s.policies) == MAX_POLICIES and s.policies[-1].name == f"p{MAX_POLICIES - 1}"
    path, got = error(tmp_path, "default-policy = off\n" + sections(MAX_POLICIES + 1))
    assert got == (f"{path}:{2 + 2 * MAX_POLICIES}: more than {MAX_POLICIES} policies: "
                   "merge some")
    # --default-policy off on the command line makes the room too
    s = load(tmp_path, sections(MAX_POLICIES), "--default-policy", "off")
    assert len(s.policies) == MAX_POLICIES


def test_policies_are_the_named_then_default(tmp_path):
    s = load(tmp_path, "name = zz\nmax-fds = 9\n[policy a]\nname = a\n[policy b]\nuser = 0\n",
             "--max-writes", "3")
    assert [p.name for p in s.policies] == ["a", "b", "default"]
    d = s.policies[-1]
    path = str(tmp_path / "p.conf")
    assert (d.comm, d.min_used, d.dry_run, d.scope) == ("zz", G, False, "process")
    assert d.limits == tuple(s.limits) == (9, 3) + DEFAULT_LIMITS[2:]
    assert d.origin["name"] == f"{path}:1" and d.origin["max-fds"] == f"{path}:2"
    assert d.origin["max-writes"] == "flag" and d.origin["max-read"] == "default"
    assert d.origin["scope"] == "default"
    assert d.text() == s.policy_text().rsplit(" interval=", 1)[0]


def test_default_policy_off(tmp_path):
    s = load(tmp_path, "default-policy = off\n[policy a]\nname = a\n")
    assert not s.default_policy and [p.name for p in s.policies] == ["a"]
    s = load(tmp_path, "default-policy = off\n[policy a]\nname = a\n", "--default-policy=on")
    assert [p.name for p in s.policies] == ["a", "default"]
    assert load(tmp_path, "default-policy = on\n").default_policy


def test_default_policy_off_with_nothing_else_is_refused(tmp_path):
    path, got = error(tmp_path, "# x\ndefault-policy = off\n")
    assert got == (f"{path}:2: default-policy = off and no [policy NAME] section: nothing to "
                   "enforce: add a section, or turn default-policy on")
    path, got = error(tmp_path, "max-fds = 5\n", "--default-policy", "off")
    assert got == (f"--default-policy off and no [policy NAME] section in {path}: nothing to "
                   "enforce: add a section, or drop --default-policy off")
    path, got = error(tmp_path, "default-policy = no\n")
    assert got.startswith(f"{path}:1: --default-policy: invalid choice: 'no'"), got


def test_settings_without_a_config_have_only_default():
    s = options.parse_settings([])
    assert s.named_policies == () and s.default_policy
    assert [p.name for p in s.policies] == ["default"]
    assert s.policies[0] == Policy(comm="oomp")
    assert set(s.policies[0].origin.values()) == {"default"}


# -- check, and the daemon's start ---------------------------------------------------

def test_check_shows_every_policy_with_origins(tmp_path, capsys, cgroup):
    mount, rel = cgroup
    path = write(tmp_path, f"max-fds = 50\n[policy ci]\ncgroup = {mount}{rel}\n"
                 "max-threads = 2000\nmax-fds = off\n[policy batch]\nuser = 0\nscope = tree\n")
    assert check.main(["--config", path, "--max-writes", "7"]) == 0
    out = capsys.readouterr().out.splitlines()
    at = out.index(f"policy ci: cgroup={rel}")
    block = [line.split() for line in out[at + 1:at + 11]]
    assert block == [
        ["cgroup", rel, f"{path}:3"], ["max-fds", "off", f"{path}:5"],
        ["max-writes", "100", "default"], ["max-read", "10.0M", "default"],
        ["max-threads", "2000", f"{path}:4"], ["max-rand", "100", "default"],
        ["max-tcp-packets", "1000", "default"], ["min-used", "1.0G", "default"],
        ["dry-run", "no", "default"], ["scope", "process", "default"]]
    assert out[at + 11] == "policy batch: user=0"
    assert out[at + 12].split() == ["user", "0", f"{path}:7"]
    assert out[at + 21].split() == ["scope", "tree", f"{path}:8"]
    assert out[at + 22] == 'policy default: name~"oomp"'
    assert out[at + 23].split() == ["name", "oomp", "default"]
    assert out[at + 24].split() == ["max-fds", "50", f"{path}:1"]
    assert out[at + 25].split() == ["max-writes", "7", "flag"]
    assert out[-1].startswith('policy: name~"oomp" min-used=1.0G fds=50 writes=7 ')
    assert [ln.split()[0] for ln in out[1:at]].count("default-policy") == 1


def test_check_shows_a_user_s_uid(tmp_path, capsys, user):
    name, uid = user
    path = write(tmp_path, f"default-policy = off\n[policy u]\nuser = {name}\n")
    assert check.main(["--config", path]) == 0
    out = capsys.readouterr().out.splitlines()
    at = out.index(f"policy u: user={name} ({uid})")
    assert out[at + 1].split() == ["user", name, f"{path}:3"]
    assert out[at + 2].split() == ["uid", str(uid), f"{path}:3"]
    assert "policy default:" not in "\n".join(out)
    assert [ln.split()[:2] for ln in out if ln.startswith("default-policy")] == \
        [["default-policy", "off"]]


BAD_CONFIGS = [
    # (text, line)
    ("[policy ci]\nname = x\ninterval = 2\n", 3),
    ("[policy ci]\nmax-fds = 5\n", 1),
    ("[policy ci]\nname = x\nexe = /nonexistent/prog\n", 3),
    ("[policy ci]\nname = x\nuser = oomkt-nobody-here\n", 3),
    ("[policy ci]\nname = x\ncgroup = /oomkt-absent/x\n", 3),
    ("default-policy = off\n", 1),
]


@pytest.mark.parametrize("text,line", BAD_CONFIGS)
def test_check_and_the_daemon_refuse_alike(tmp_path, capsys, monkeypatch, text, line):
    """Exit 2, one line naming PATH:LINE, the same from `check` as from the
    daemon's start, and the daemon never reaches run() (no root, no BPF)."""
    path = write(tmp_path, text)
    assert check.main(["--config", path]) == 2
    out, checked = capsys.readouterr()
    assert out == "" and checked.startswith(f"oomkiller: {path}:{line}: ")
    assert checked.count("\n") == 1
    monkeypatch.setattr(cli, "run", lambda *a, **k: pytest.fail("started"))
    with pytest.raises(SystemExit) as e:
        cli.main(["--config", path])
    assert e.value.code == 2
    assert capsys.readouterr() == ("", checked)


@pytest.mark.skipif(not os.access(OOMKILLER, os.X_OK), reason="./oomkiller not built: make")
def test_the_built_check_says_the_same(tmp_path):
    path = write(tmp_path, "max-fds = 5\n[policy ci]\nname = x\nmax-fd = 5\n")
    env = {k: v for k, v in os.environ.items() if k != "OOMKILLER_CONFIG"}
    env["OOMKILLER_BPF_OBJ"] = "/nonexistent/oomkiller.bpf.o"
    res = subprocess.run([str(OOMKILLER), "check", "--config", path], capture_output=True,
                         text=True, timeout=30, env=env, stdin=subprocess.DEVNULL)
    assert (res.returncode, res.stdout) == (2, "")
    assert res.stderr == (f"oomkiller: {path}:4: unknown key 'max-fd' in a [policy]: "
                          "did you mean 'max-fds'?\n")
