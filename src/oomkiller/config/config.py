"""The config file, /etc/oomkiller.conf: `key = value` lines, keys named as the long options.

This module only reads the file and turns it into argv tokens; the CLI's own
argument types validate the values, so a bad value in the file gets the same
one-line message and exit 2 as the same value on the command line. The CLI puts
the file's tokens first, `config_argv + argv`, so a flag given on the command
line wins (argparse keeps the last occurrence).

Format:
    # comment (a line whose first non-blank character is #)
    max-fds = 200            # a comment after an unquoted value, after a blank
    name = "my proc # 1"     # quotes keep blanks and # in a value
    dry-run = yes            # booleans: true/false, yes/no, on/off, 1/0

    [policy ci]              # a named policy (issue 20): its keys follow
    cgroup = /system.slice/ci-runner.service
    max-threads = 2000

The top-level lines (before the first section) set the globals and the
policy named `default`. Each `[policy NAME]` section is one more policy; it
takes only SECTION_KEYS. Here a section is only read and checked for form
(known keys, each once, one section per name); options.py turns it into a
policy.Policy: its values are checked with the CLI's types, its selectors
resolved (selectors.py). A section does not inherit the top-level values:
a limit, min-used or dry-run it leaves unset is the built-in default
(rules.RULES, 1G, no), whatever the top-level lines say.
"""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass, field
from typing import Mapping, Optional, Sequence

from oomkiller.config.rules import RULES

DEFAULT_PATH = "/etc/oomkiller.conf"
ENV_VAR = "OOMKILLER_CONFIG"

# Options that take a value, checked later by the CLI's argument types.
VALUE_KEYS = ("min-used", "name", *(r.option for r in RULES), "interval", "capacity", "attach",
              "metrics-file", "metrics-listen", "default-policy")
# Flags: `--KEY` is emitted when the value is true, nothing when false.
BOOL_KEYS = ("dry-run", "json")
# `verbose = N`: -v given N times (0-3), or a boolean (true = 1).
COUNT_KEYS = ("verbose",)
KEYS = VALUE_KEYS + BOOL_KEYS + COUNT_KEYS
# Command-line only: they make no sense in the file that --config names.
CLI_ONLY = ("config", "help", "version")

# The keys of a `[policy NAME]` section: selectors, then what the policy allows.
SELECTOR_KEYS = ("name", "exe", "cgroup", "unit", "user")
SECTION_KEYS = SELECTOR_KEYS + tuple(r.option for r in RULES) + ("min-used", "dry-run", "scope")
# `[policy NAME]`, an optional ` # comment` after it.
_HEADER = re.compile(r"\[\s*policy\s+([^\]\s]*)\s*\]\s*(?:#.*)?")
_POLICY_NAME = re.compile(r"[A-Za-z0-9_.-]{1,32}")
RESERVED_POLICY = "default"

MAX_VERBOSE = 3
MAX_LINE = 4096  # longer than any sane line; a binary file ends here quickly
_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")


class ConfigError(Exception):
    """One line, `PATH:LINE: what is wrong: what to do`; the CLI exits 2."""


@dataclass
class Section:
    """One `[policy NAME]` section: raw values, and the line of each."""
    name: str
    path: str
    line: int                                   # of the header
    values: dict[str, str] = field(default_factory=dict)
    lines: dict[str, int] = field(default_factory=dict)

    def where(self, key: Optional[str] = None) -> str:
        """`PATH:LINE` of a key, or of the header."""
        return f"{self.path}:{self.lines[key] if key in self.lines else self.line}"


class Config(dict):
    """dict[str, str] of top-level key -> raw value, plus where each key was
    set, and the `[policy NAME]` sections in file order."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path
        self.lines: dict[str, int] = {}
        self.sections: list[Section] = []

    def where(self, key: str) -> str:
        """`PATH:LINE` of a key, for messages about its value."""
        return f"{self.path}:{self.lines[key]}" if key in self.lines else self.path


def parse_bool(text: str) -> bool:
    low = text.lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise ValueError(f"not a boolean: {text!r}: use true or false")


def parse_verbose(text: str) -> int:
    if text.isascii() and text.isdigit():
        level = int(text)
        if level <= MAX_VERBOSE:
            return level
        raise ValueError(f"at most {MAX_VERBOSE}, got {text!r}")
    try:
        return int(parse_bool(text))
    except ValueError:
        raise ValueError(f"not a level 0-{MAX_VERBOSE} or a boolean: {text!r}") from None


def _unknown_key(key: str, keys: Sequence[str] = KEYS) -> str:
    if key.startswith("-"):
        bare = key.lstrip("-")
        return f"unknown key {key!r}: write the option without dashes, e.g. {bare!r}"
    if key in CLI_ONLY:
        return f"{key!r} is a command-line option only: remove it from the file"
    if keys is SECTION_KEYS and key in KEYS:
        return f"{key!r} is a global setting: put it before the first [policy]"
    guess = difflib.get_close_matches(key.lower().replace("_", "-"), keys, n=1, cutoff=0.6)
    hint = f"did you mean {guess[0]!r}?" if guess else "keys are " + ", ".join(keys)
    where = " in a [policy]" if keys is SECTION_KEYS else ""
    return f"unknown key {key!r}{where}: {hint}"


def _header(stripped: str) -> str:
    """The NAME of a `[policy NAME]` line; ValueError for any other header."""
    m = _HEADER.fullmatch(stripped)
    if not m:
        raise ValueError(f"not `key = value` or `[policy NAME]`: {stripped[:60]!r}")
    name = m.group(1)
    if name == RESERVED_POLICY:
        raise ValueError("'default' is reserved: the top-level lines make the default policy: "
                         "give this one another name")
    if not _POLICY_NAME.fullmatch(name):
        raise ValueError(f"bad policy name {name!r}: use 1-32 letters, digits, '_', '.' or '-'")
    return name


def _split_value(raw: str) -> str:
    """The value part of a line: unquote, or cut a trailing ` # comment`."""
    raw = raw.strip()
    if raw[:1] in ('"', "'"):
        quote = raw[0]
        end = raw.find(quote, 1)
        if end < 0:
            raise ValueError(f"unterminated {quote} quote: close it")
        rest = raw[end + 1:].strip()
        if rest and not rest.startswith("#"):
            raise ValueError(f"text after the closing quote: {rest!r}: "
                             "put a comment after a blank and #")
        return raw[1:end]
    for i, ch in enumerate(raw):
        if ch == "#" and (i == 0 or raw[i - 1] in " \t"):
            return raw[:i].rstrip()
        if ch in "\"'":
            raise ValueError(f"a quote inside an unquoted value: {raw!r}: "
                             "quote the whole value")
    return raw


def _check_value(key: str, value: str) -> None:
    if value == "":
        raise ValueError(f"{key}: empty value: give a value, or comment the line out")
    if "\0" in value:
        raise ValueError(f"{key}: the value contains NUL")
    if key in BOOL_KEYS:
        parse_bool(value)
    elif key in COUNT_KEYS:
        parse_verbose(value)


def parse_config(text: str, path: str = "<config>") -> Config:
    """Parse the text of a config file. Raises ConfigError naming path:line."""
    config = Config(path)
    section: Optional[Section] = None
    for number, line in enumerate(text.splitlines(), 1):
        def error(what: str) -> ConfigError:
            return ConfigError(f"{path}:{number}: {what}")

        if len(line) > MAX_LINE:
            raise error(f"line longer than {MAX_LINE} characters")
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        if stripped.startswith("["):
            try:
                name = _header(stripped)
            except ValueError as e:
                raise error(str(e)) from None
            for other in config.sections:
                if other.name == name:
                    raise error(f"[policy {name}] again (first on line {other.line}): "
                                "give each policy its own name")
            section = Section(name, path, number)
            config.sections.append(section)
            continue
        if "=" not in stripped:
            raise error(f"not `key = value`: {stripped[:60]!r}")
        key, _, raw = stripped.partition("=")
        key = key.strip()
        if not key:
            raise error("a value without a key: write `key = value`")
        if any(c.isspace() for c in key):
            raise error(f"a key cannot contain blanks: {key!r}")
        keys, values, lines = ((KEYS, config, config.lines) if section is None
                               else (SECTION_KEYS, section.values, section.lines))
        if key not in keys:
            raise error(_unknown_key(key, keys))
        if key in values:
            raise error(f"{key!r} set again (first on line {lines[key]}): keep one")
        try:
            value = _split_value(raw)
            _check_value(key, value)
        except ValueError as e:
            raise error(str(e)) from None
        values[key] = value
        lines[key] = number
    return config


def load_config(path: str, missing_ok: bool = False) -> Config:
    """Read and parse a config file. A missing file is an empty config when
    missing_ok (the default path), else a ConfigError (a path the user named)."""
    try:
        with open(path, "rb") as f:
            data = f.read(1 << 20)
    except FileNotFoundError:
        if missing_ok:
            return Config(path)
        raise ConfigError(f"{path}: no such config file: check the path") from None
    except IsADirectoryError:
        raise ConfigError(f"{path}: is a directory: name a config file") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read the config file: {e.strerror}") from None
    if len(data) >= 1 << 20:
        raise ConfigError(f"{path}: larger than 1 MiB: this is not a config file")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        raise ConfigError(f"{path}:{line}: not UTF-8 text") from None
    return parse_config(text, path)


def config_to_argv(config: Mapping[str, str]) -> list[str]:
    """Argv tokens for the CLI parser, in KEYS order. `--key=value` keeps a value
    that starts with `-` a value, so the CLI's type check judges it."""
    argv: list[str] = []
    for key in KEYS:
        if key not in config:
            continue
        value = config[key]
        if key in BOOL_KEYS:
            if parse_bool(value):
                argv.append(f"--{key}")
        elif key in COUNT_KEYS:
            argv.extend([f"--{key}"] * parse_verbose(value))
        else:
            argv.append(f"--{key}={value}")
    unknown = sorted(set(config) - set(KEYS))
    if unknown:
        raise ConfigError(_unknown_key(unknown[0]))
    return argv


def config_path(argv: Sequence[str],
                environ: Optional[Mapping[str, str]] = None) -> tuple[str, bool]:
    """Which file to read, and whether it was named (then it must exist):
    `--config PATH` on the command line, else $OOMKILLER_CONFIG, else the default.
    The last --config wins, as argparse would have it; scanning stops at `--`."""
    environ = os.environ if environ is None else environ
    named: Optional[str] = None
    i = 0
    while i < len(argv):
        arg = argv[i]
        if arg == "--":
            break
        if arg == "--config":
            if i + 1 >= len(argv) or (argv[i + 1].startswith("-") and argv[i + 1] != "-"):
                raise ConfigError("--config: expected a PATH")
            named = argv[i + 1]
            i += 2
            continue
        if arg.startswith("--config="):
            named = arg[len("--config="):]
        i += 1
    if named is None and environ.get(ENV_VAR):
        named = environ[ENV_VAR]
    if named is not None:
        if not named:
            raise ConfigError("--config: empty PATH")
        return named, True
    return DEFAULT_PATH, False


def argv_with_config(argv: Sequence[str],
                     environ: Optional[Mapping[str, str]] = None) -> tuple[list[str], Config]:
    """The whole job for the CLI: `config_argv + argv`, and the Config read."""
    path, named = config_path(argv, environ)
    config = load_config(path, missing_ok=not named)
    return config_to_argv(config) + list(argv), config
