"""Source files and spans: every AST node and diagnostic points into one of these."""

from __future__ import annotations

import bisect
from pathlib import Path

from .frozen_classes import field, frozen, mutable


@frozen
class Span:
    """A region of a source file. Lines and columns are 1-based; end is exclusive."""

    path: str
    line: int
    column: int
    end_line: int
    end_column: int
    start: int  # character offsets into the text
    end: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}"


@mutable
class SourceFile:
    path: str
    text: str
    _line_starts: list[int] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        starts = [0]
        i = self.text.find("\n")
        while i >= 0:
            starts.append(i + 1)
            i = self.text.find("\n", i + 1)
        self._line_starts = starts

    def position(self, offset: int) -> tuple[int, int]:
        """1-based (line, column) of a character offset."""
        offset = max(0, min(offset, len(self.text)))
        index = bisect.bisect_right(self._line_starts, offset) - 1
        return index + 1, offset - self._line_starts[index] + 1

    def span(self, start: int, end: int) -> Span:
        line, column = self.position(start)
        end_line, end_column = self.position(end)
        return Span(self.path, line, column, end_line, end_column, start, end)

    def line_text(self, line: int) -> str:
        if line < 1 or line > len(self._line_starts):
            return ""
        start = self._line_starts[line - 1]
        end = self.text.find("\n", start)
        return self.text[start : end if end >= 0 else len(self.text)]

    def whole(self) -> Span:
        return self.span(0, len(self.text))


def find_files(
    paths: list[str] | tuple[str, ...], suffixes: tuple[str, ...], recursive: bool = True
) -> tuple[list[Path], list[str]]:
    """Files given as files or folders (searched for the suffixes), in a stable order.

    Returns the files and the problems (missing paths, folders with nothing to read).
    """
    files: list[Path] = []
    problems: list[str] = []
    for p in map(Path, paths):
        if p.is_dir():
            pick = p.rglob if recursive else p.glob
            found = sorted({f for s in suffixes for f in pick(f"*{s}")})
            if not found:
                problems.append(f"{p}: no {' or '.join(suffixes)} files in this folder")
            files.extend(found)
        elif p.exists():
            files.append(p)
        else:
            problems.append(f"{p}: no such file or folder")
    return files, problems


# A criteria file is text written by people: 8 MiB holds some 50,000 criteria. The cap
# keeps `import "/dev/urandom"` or a runaway file from exhausting memory
# (docs/security.md).
MAX_SOURCE_BYTES = 8 * 1024 * 1024


class SourceTooLarge(OSError):
    """A criteria file longer than MAX_SOURCE_BYTES."""


def read_source(path: str | Path, limit: int = MAX_SOURCE_BYTES) -> str:
    """A criteria file's text, reading at most `limit` bytes.

    Raises SourceTooLarge past the limit, OSError when unreadable, UnicodeDecodeError
    when not UTF-8.
    """
    with open(path, "rb") as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise SourceTooLarge(f"larger than {limit // (1024 * 1024)} MiB")
    return data.decode("utf-8")
