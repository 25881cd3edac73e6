"""Unit tests for the config file (src/oomkiller/config/config.py): format, errors with
line numbers, booleans, precedence over the command line, the shipped default."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from oomkiller.commands import cli  # noqa: E402
from oomkiller.config import options  # noqa: E402
from oomkiller.config.config import (DEFAULT_PATH, ENV_VAR, KEYS, Config, ConfigError,  # noqa: E402
                              argv_with_config, config_path, config_to_argv, load_config,
                              parse_config)
from oomkiller.config.rules import OFF  # noqa: E402
from oomkiller.messages import UsageError  # noqa: E402

SAMPLE = ROOT / "dist" / "oomkiller.conf"


def write(tmp_path: Path, text: str, name: str = "oomkiller.conf") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def settings_from(tmp_path: Path, text: str, argv: list[str]):
    """What the CLI will do: file tokens first, then the command line."""
    path = write(tmp_path, text)
    full, _ = argv_with_config(argv, {ENV_VAR: path})
    return cli.parse_settings(full)


# -- the format ---------------------------------------------------------------

def test_comments_blanks_and_spacing():
    text = ("# a comment\n"
            "\n"
            "   # an indented comment\n"
            "max-fds=200\n"
            "  max-writes   =\t300  \n"
            "max-read = 20M # inline comment after a blank\n"
            "name = \"a b # c\"   # quoted keeps blanks and #\n"
            "attach = 'tracepoint'\n"
            "interval = 2.5\r\n")
    c = parse_config(text, "t.conf")
    assert dict(c) == {"max-fds": "200", "max-writes": "300", "max-read": "20M",
                       "name": "a b # c", "attach": "tracepoint", "interval": "2.5"}
    assert c.lines == {"max-fds": 4, "max-writes": 5, "max-read": 6, "name": 7,
                       "attach": 8, "interval": 9}
    assert c.where("max-read") == "t.conf:6"


def test_hash_inside_a_word_is_part_of_the_value():
    assert parse_config("name = oomp#1\n")["name"] == "oomp#1"


def test_empty_file_and_only_comments():
    assert parse_config("") == {}
    assert parse_config("# nothing\n\n#max-fds = 5\n") == {}


def test_utf8_bom_is_ignored(tmp_path):
    path = tmp_path / "bom.conf"
    path.write_bytes(b"\xef\xbb\xbfmax-fds = 7\n")
    assert load_config(str(path)) == {"max-fds": "7"}


def test_every_key_is_a_long_option_of_the_cli():
    options = {s for a in cli.build_parser()._actions for s in a.option_strings}
    for key in KEYS:
        assert f"--{key}" in options, key


# -- booleans and the verbose count -------------------------------------------

@pytest.mark.parametrize("word,flag", [
    ("true", True), ("TRUE", True), ("yes", True), ("Yes", True), ("on", True), ("1", True),
    ("false", False), ("False", False), ("no", False), ("NO", False), ("off", False),
    ("0", False),
])
def test_booleans(word, flag):
    argv = config_to_argv(parse_config(f"dry-run = {word}\njson = {word}\n"))
    assert argv == (["--dry-run", "--json"] if flag else [])


@pytest.mark.parametrize("word,count", [("0", 0), ("1", 1), ("2", 2), ("3", 3),
                                        ("yes", 1), ("false", 0)])
def test_verbose(word, count):
    assert config_to_argv(parse_config(f"verbose = {word}\n")) == ["--verbose"] * count


def test_values_become_key_equals_value_tokens():
    c = parse_config("name = -x\nmax-fds = 5\nmin-used = 0\n")
    # KEYS order; `=` keeps `-x` a value for the CLI's type check to judge
    assert config_to_argv(c) == ["--min-used=0", "--name=-x", "--max-fds=5"]


def test_config_to_argv_takes_a_plain_dict():
    assert config_to_argv({"json": "yes", "capacity": "100"}) == ["--capacity=100", "--json"]
    with pytest.raises(ConfigError, match="unknown key 'bogus'"):
        config_to_argv({"bogus": "1"})


# -- precedence: the command line wins ----------------------------------------

def test_file_sets_limits(tmp_path):
    s = settings_from(tmp_path, "max-fds = 200\nmin-used = 2G\nname = zzz\ndry-run = yes\n"
                      "interval = 0.5\ncapacity = 100\nattach = tracepoint\njson = on\n", [])
    assert s.limits[cli.abi.RULE_FDS] == 200
    assert s.min_used == 2 << 30
    assert s.name == "zzz"
    assert s.dry_run and s.json
    assert s.interval == 0.5 and s.capacity == 100 and s.attach == "tracepoint"


def test_command_line_overrides_file(tmp_path):
    s = settings_from(tmp_path, "max-fds = 200\nmax-read = 1M\nname = zzz\n",
                      ["--max-fds", "300", "--name=abc"])
    assert s.limits[cli.abi.RULE_FDS] == 300       # flag wins
    assert s.limits[cli.abi.RULE_READ_BYTES] == 1 << 20  # file, not overridden
    assert s.name == "abc"
    assert s.limits[cli.abi.RULE_WRITES] == 100     # neither: the default


def test_boolean_false_in_file_lets_command_line_turn_it_on(tmp_path):
    assert settings_from(tmp_path, "dry-run = no\n", ["--dry-run"]).dry_run
    assert not settings_from(tmp_path, "dry-run = no\n", []).dry_run


def test_bad_value_in_file_exits_2_like_the_command_line(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        settings_from(tmp_path, "max-fds = 0\n", [])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "max-fds" in err and "Traceback" not in err


# -- which file ---------------------------------------------------------------

def test_config_path_precedence():
    assert config_path([], {}) == (DEFAULT_PATH, False)
    assert config_path([], {ENV_VAR: "/e"}) == ("/e", True)
    assert config_path(["--config", "/a"], {ENV_VAR: "/e"}) == ("/a", True)
    assert config_path(["--config=/b"], {}) == ("/b", True)
    assert config_path(["--config", "/a", "--config=/b"], {}) == ("/b", True)
    assert config_path(["--", "--config", "/a"], {}) == (DEFAULT_PATH, False)
    with pytest.raises(ConfigError, match="expected a PATH"):
        config_path(["--config"], {})
    with pytest.raises(ConfigError, match="expected a PATH"):
        config_path(["--config", "--json"], {})
    with pytest.raises(ConfigError, match="empty PATH"):
        config_path(["--config="], {})


def test_missing_default_file_is_empty(tmp_path):
    c = load_config(str(tmp_path / "absent.conf"), missing_ok=True)
    assert c == {} and isinstance(c, Config)


def test_missing_named_file_is_an_error(tmp_path):
    missing = str(tmp_path / "absent.conf")
    with pytest.raises(ConfigError, match="no such config file"):
        load_config(missing)
    with pytest.raises(ConfigError, match="no such config file"):
        argv_with_config(["--config", missing], {})
    with pytest.raises(ConfigError, match="no such config file"):
        argv_with_config([], {ENV_VAR: missing})


def test_argv_with_config_keeps_command_line_last(tmp_path):
    path = write(tmp_path, "max-fds = 9\n")
    argv, c = argv_with_config(["--config", path, "--max-fds", "10"], {})
    assert argv == ["--max-fds=9", "--config", path, "--max-fds", "10"]
    assert c.path == path and c.lines == {"max-fds": 1}


def test_unreadable_inputs(tmp_path):
    with pytest.raises(ConfigError, match="is a directory"):
        load_config(str(tmp_path))
    binary = tmp_path / "bin.conf"
    binary.write_bytes(b"max-fds = 1\n\xff\xfe\n")
    with pytest.raises(ConfigError, match=r"bin\.conf:2: not UTF-8"):
        load_config(str(binary))
    big = tmp_path / "big.conf"
    big.write_bytes(b"#" * (1 << 20))
    with pytest.raises(ConfigError, match="larger than 1 MiB"):
        load_config(str(big))


# -- errors, each naming file:line --------------------------------------------

BAD = [
    # (text, line, message fragment)
    ("max-fds\n", 1, "not `key = value`"),
    ("# ok\nmax-fds 100\n", 2, "not `key = value`"),
    ("= 100\n", 1, "a value without a key"),
    ("max fds = 100\n", 1, "cannot contain blanks"),
    ("max_fds = 100\n", 1, "did you mean 'max-fds'"),
    ("Max-Fds = 100\n", 1, "did you mean 'max-fds'"),
    ("--max-fds = 100\n", 1, "without dashes"),
    ("bogus = 1\n", 1, "unknown key 'bogus'"),
    ("max-memory = 1G\n", 1, "unknown key"),
    ("config = /etc/x.conf\n", 1, "command-line option only"),
    ("help = yes\n", 1, "command-line option only"),
    ("version = 1\n", 1, "command-line option only"),
    ("max-fds = 1\nmax-fds = 2\n", 2, "set again (first on line 1)"),
    ("json = yes\n\n# x\njson = no\n", 4, "set again"),
    ("max-fds =\n", 1, "empty value"),
    ("max-fds =    # nothing\n", 1, "empty value"),
    ("name = \"\"\n", 1, "empty value"),
    ("name = \"oomp\n", 1, "unterminated \" quote"),
    ("name = 'oomp\n", 1, "unterminated ' quote"),
    ("name = \"oomp\" extra\n", 1, "text after the closing quote"),
    ("name = oo\"mp\n", 1, "a quote inside an unquoted value"),
    ("name = a\0b\n", 1, "contains NUL"),
    ("dry-run = maybe\n", 1, "not a boolean"),
    ("dry-run = 2\n", 1, "not a boolean"),
    ("json = truee\n", 1, "not a boolean"),
    ("json = -1\n", 1, "not a boolean"),
    ("verbose = 4\n", 1, "at most 3"),
    ("verbose = loud\n", 1, "not a level"),
    ("verbose = -1\n", 1, "not a level"),
    ("max-fds = 1\n" + "x" * 5000 + "\n", 2, "longer than"),
    ("[oomkiller]\nmax-fds = 1\n", 1, "not `key = value`"),
]


@pytest.mark.parametrize("text,line,fragment", BAD)
def test_bad_lines(tmp_path, text, line, fragment):
    path = write(tmp_path, text, "bad.conf")
    with pytest.raises(ConfigError) as e:
        load_config(path)
    message = str(e.value)
    assert message.startswith(f"{path}:{line}: "), message
    assert fragment in message
    assert "\n" not in message


# Values the file accepts as text but the CLI's types reject: exit 2, one line.
BAD_VALUES = [
    "max-fds = 0", "max-fds = -1", "max-fds = 1.5", "max-fds = ten", "max-writes = 0",
    "max-read = 0", "max-read = 10Q", "max-read = -5M", "min-used = lots", "min-used = -1G",
    "max-threads = 0", "max-rand = x", "max-tcp-packets = 0", "interval = 0",
    "interval = -1", "interval = nan", "interval = 3601", "capacity = 0",
    "capacity = 99999999999", "attach = uprobe", "name = sixteen-bytes-xx",
    "max-fds = ５", "max-fds = 18446744073709551615", "max-read = 18446744073709551615",
    "min-used = 1.5", "min-used = 0.3K", "interval = 1e-9", "interval = 0.001",
    "interval = inf", "capacity = ５",
]


@pytest.mark.parametrize("line", BAD_VALUES)
def test_bad_values_exit_2_through_the_cli(tmp_path, capsys, line):
    with pytest.raises(SystemExit) as e:
        settings_from(tmp_path, line + "\n", [])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("oomkiller: ") and err.count("\n") == 1, err


# The same values through options.settings_from(), as the daemon, SIGHUP and
# `check` read the file: the message names PATH:LINE.
NUMBERS = [
    # (value line, the option's message after "--OPTION: ")
    ("max-fds = ５", "'５' is not plain ASCII (U+FF15): type the digits 0-9 (or off)"),
    ("max-rand = 18446744073709551615",
     "'18446744073709551615' is too large: at most 18446744073709551614 (or off)"),
    ("max-read = 18446744073709551615",
     "'18446744073709551615' is too large: at most 18446744073709551614 bytes (or off)"),
    ("min-used = 1.5", "'1.5' is not a whole number of bytes: round it"),
    ("min-used = 0.3K", "'0.3K' is not a whole number of bytes (307.2): round it"),
    ("interval = 1e-9", "'1e-9' is not a plain decimal number (such as 0.5 or 2)"),
    ("interval = 0.0099", "must be at least 0.01 and at most 3600 seconds, got '0.0099'"),
    ("capacity = ５", "'５' is not plain ASCII (U+FF15): type the digits 0-9"),
]


@pytest.mark.parametrize("line,message", NUMBERS)
def test_bad_numbers_name_path_and_line(tmp_path, line, message):
    path = write(tmp_path, "# numbers\nname = oomp\n" + line + "\n")
    with pytest.raises(UsageError) as e:
        options.settings_from(["--config", path])
    option = "--" + line.split(" =")[0]
    assert str(e.value) == f"{path}:3: {option}: {message}"


def test_numbers_people_write_are_fine_in_the_file(tmp_path):
    path = write(tmp_path, "max-fds = off\nmax-rand = 18446744073709551614\nmin-used = 1.5G\n"
                 "max-read = 0.5K\ninterval = 0.01\ncapacity = 016\n")
    s = options.settings_from(["--config", path])
    assert s.limits[cli.abi.RULE_FDS] == OFF
    assert s.limits[cli.abi.RULE_RAND] == OFF - 1
    assert s.min_used == 3 << 29 and s.limits[cli.abi.RULE_READ_BYTES] == 512
    assert s.interval == 0.01 and s.capacity == 16


def test_a_bad_number_in_the_file_is_exit_2_with_path_line(tmp_path, monkeypatch, capsys):
    """What `oomkiller` does with it: one line, exit 2, before it needs root."""
    path = write(tmp_path, "max-fds = 18446744073709551615\n")
    monkeypatch.setenv(ENV_VAR, path)
    monkeypatch.setattr(cli, "run", lambda *a, **k: pytest.fail("started"))
    with pytest.raises(SystemExit) as e:
        cli.main([])
    assert e.value.code == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == (f"oomkiller: {path}:1: --max-fds: '18446744073709551615' is too large: "
                   "at most 18446744073709551614 (or off)\n")


# -- the shipped default config ----------------------------------------------

def test_shipped_config_is_all_comments():
    assert load_config(str(SAMPLE)) == {}


def test_shipped_config_defaults_match_the_cli(tmp_path):
    """Uncomment every `#key = value` line of dist/oomkiller.conf: the settings
    must equal the CLI's defaults, and every key must be there."""
    text = SAMPLE.read_text()
    top = text[:text.index("\n#[policy ")]  # the example sections are no defaults
    lines = [ln[1:].strip() for ln in top.splitlines()
             if ln.startswith("#") and "=" in ln and ln[1:].split("=")[0].strip() in KEYS]
    uncommented = parse_config("\n".join(lines) + "\n", "sample")
    assert set(uncommented) == set(KEYS)
    # Off by default, so the file shows an example value instead.
    examples = {"metrics-file", "metrics-listen"}
    defaults = cli.parse_settings([])
    assert all(getattr(defaults, k.replace("-", "_")) is None for k in examples)
    from_file = cli.parse_settings(config_to_argv(
        {k: v for k, v in uncommented.items() if k not in examples}))
    assert from_file == defaults


def test_shipped_config_example_sections_parse():
    """Uncommented, the example [policy] sections are well formed (their
    selectors name a unit and a user this machine need not have)."""
    text = SAMPLE.read_text()
    example = text[text.index("\n#[policy "):]
    c = parse_config("\n".join(ln[1:] for ln in example.splitlines() if ln.startswith("#")),
                     "sample")
    assert [s.name for s in c.sections] == ["ci", "batch"]
    assert c.sections[0].values == {"unit": "ci-runner.service", "max-threads": "2000",
                                    "max-fds": "off"}
    assert c.sections[1].values == {"user": "batch", "max-read": "500G", "scope": "tree"}


def test_env_var_is_read_by_default(tmp_path, monkeypatch):
    path = write(tmp_path, "max-rand = 7\n")
    monkeypatch.setenv(ENV_VAR, path)
    argv, _ = argv_with_config([])
    assert argv == ["--max-rand=7"]
    assert os.environ[ENV_VAR] == path
