"""The standard streams of a `critlang` run: a reader that leaves (a closed pipe), a
stream closed at start, a full disk. The commands go on and write their files; the
streams say nothing more."""

from __future__ import annotations

import sys
from typing import Any


def _nowhere() -> Any:
    import os

    return open(os.devnull, "w", encoding="utf-8")  # lives as long as the run


class _PipeGuard:
    """A standard stream whose reader may leave: once a write meets a closed pipe, later
    writes are dropped and the command goes on, so a closed standard output or error
    never loses the files the command writes (realfhir7 F13: with SIGPIPE's default
    action the process died at the first diagnostic after `| head -3`, before writing
    --patients). Anything else is the stream's own."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.cut = False

    def write(self, text: str) -> int:
        if not self.cut:
            try:
                return int(self.stream.write(text))
            except BrokenPipeError:
                self._close()
        return len(text)

    def flush(self) -> None:
        if not self.cut:
            try:
                self.stream.flush()
            except BrokenPipeError:
                self._close()

    def _close(self) -> None:
        self.cut = True
        import os

        try:  # the interpreter's final flush of the stream goes nowhere, quietly
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self.stream.fileno())
        except (OSError, ValueError, AttributeError):  # not a real file (tests capture it)
            pass

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


def _output_failed(exc: OSError) -> bool:
    """An error of writing, as commands report reading errors themselves (in words)."""
    import errno

    return exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO, errno.EROFS)


def _closed_pipe() -> int:
    """The reader went away (`critlang eval ... | head -1`): stop quietly.

    As the Python documentation advises (signal module, "Note on SIGPIPE"): point stdout
    at devnull so that the interpreter's final flush does not fail again, and exit as a
    process killed by SIGPIPE would (128 + 13).
    """
    import os

    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout is not a real file (tests capture it)
        pass
    return 141
