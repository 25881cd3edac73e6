"""Every line oomkiller says to its user on stderr: `oomkiller: TEXT`, and,
when systemd connected stderr to the journal, the line's priority.

One Messages per stream. `fail()` is the one-line error of a command that
exits non-zero.
"""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn, Optional, TextIO

from oomkiller.outputs import journal

# Exit codes (README, Exit codes): one source.
EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


def fileno(stream: TextIO) -> int:
    """The stream's fd, or -1 (a StringIO in tests, a closed stream)."""
    try:
        return stream.fileno()
    except (AttributeError, OSError, ValueError):
        return -1


class Messages:
    def __init__(self, err: Optional[TextIO] = None, verbose: bool = False) -> None:
        self.err = sys.stderr if err is None else err
        self.verbose = verbose
        self.journal = journal.connected(fileno(self.err))

    def line(self, priority: int, text: str) -> None:
        """TEXT as it is (the ready line, the summary)."""
        self.err.write(f"{journal.prefix(priority, self.journal)}{text}\n")
        self.err.flush()

    def note(self, priority: int, text: str) -> None:
        self.line(priority, f"oomkiller: {text}")

    def say(self, text: str) -> None:
        """-v diagnostics."""
        if self.verbose:
            self.note(journal.DEBUG, text)

    def warn(self, text: str) -> None:
        self.note(journal.WARNING, f"warning: {text}")

    def error(self, text: str) -> None:
        self.note(journal.ERR, text)


def fail(message: str, code: int = EXIT_FAILURE) -> int:
    """Say `oomkiller: MESSAGE` on stderr and return the exit code."""
    Messages().error(message)
    return code


class UsageError(Exception):
    pass


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit 2 (or UsageError,
    for a reload that must not exit)."""

    raise_errors = False

    def error(self, message: str) -> NoReturn:
        if message.startswith("argument "):
            message = message[len("argument "):]
        if self.raise_errors:
            raise UsageError(message)
        self.exit(EXIT_USAGE, f"oomkiller: {message}: see oomkiller --help\n")
