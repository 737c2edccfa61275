"""The `critlang` command, its inputs: paths and folders of criteria files and patients,
a protocol loaded through the front end (imported lazily: `--help` loads no parser),
screening dates, I/O problems in words.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from .diagnostics import render_text
from .source import find_files

if TYPE_CHECKING:
    from .frontend import Analysis


SUFFIX = ".crit"


def os_error_words(exc: BaseException) -> str:
    """An I/O problem in words (never `[Errno 21] ...`): what is wrong with the path."""
    import errno

    if isinstance(exc, UnicodeDecodeError):
        return f"not UTF-8 text (byte {exc.start} cannot be decoded)"
    if not isinstance(exc, OSError):
        return str(exc)
    words = {
        errno.EISDIR: "is a folder, not a file",
        errno.ENOENT: "no such file or folder",
        errno.ENOTDIR: "a part of the path is not a folder",
        errno.EACCES: "permission denied",
        errno.EPERM: "permission denied",
        errno.ENOSPC: "no space left on the device",
        errno.EROFS: "the file system is read-only",
        errno.ENAMETOOLONG: "the name is too long",
        errno.ELOOP: "too many symbolic links",
    }
    return words.get(exc.errno or 0) or (exc.strerror or str(exc)).lower()


def analyse_file(path: str | Path) -> Analysis:
    """The front end, imported when a command needs it: `--help` loads no parser."""
    from .frontend import analyse_file as analyse

    return analyse(path)


def _expand(paths: Sequence[str]) -> tuple[list[Path], list[str]]:
    """Criteria files as given, folders searched for *.crit."""
    return find_files(tuple(paths), (SUFFIX,))


def output_problems(outputs: dict[str, str | None], inputs: Sequence[Path]) -> list[str]:
    """Why the files a command is to write cannot be written as named, before any work:
    an output that is one of its inputs (the data or the protocol: writing it would
    destroy it; breaker7 F15), two outputs on one file, a folder that does not exist (it
    is not created: a typo must not make folders), a --patients table that is neither
    .csv nor .jsonl/.ndjson. `outputs`: flag -> path (None: not asked for)."""

    def key(path: Path) -> str:
        try:
            return str(path.resolve())
        except (OSError, RuntimeError):
            return str(path.absolute())

    problems: list[str] = []
    taken = {key(p): f"{p}, a file this command reads" for p in inputs}
    for flag, name in outputs.items():
        if not name:
            continue
        path = Path(name)
        k = key(path)
        if k in taken:
            problems.append(f"{flag} {name}: is {taken[k]}; name another file")
            continue
        taken[k] = f"the {flag} output"
        if not path.parent.is_dir():
            problems.append(f"{flag} {name}: the folder {path.parent} does not exist")
        elif path.is_dir():
            problems.append(f"{flag} {name}: is a folder, not a file")
        if flag == "--patients" and path.suffix.lower() not in (".csv", ".jsonl", ".ndjson"):
            problems.append(f"{flag} {name}: name a .csv (CSV) or .jsonl (JSON Lines) file")
    return problems


def _usable(found: tuple[list[Path], list[str]]) -> list[Path] | None:
    """The files found, or None after saying why the paths are unusable (exit 2)."""
    files, problems = found
    for msg in problems:
        print(f"critlang: {msg}", file=sys.stderr)
    return None if problems else files


def _load_protocol(path: str) -> tuple[Analysis | None, int]:
    """Analyse a protocol for eval; (analysis, 0) or (None, exit code) after reporting."""
    try:
        a = analyse_file(path)
    except (OSError, UnicodeDecodeError) as exc:
        print(f"critlang: {path}: cannot read: {os_error_words(exc)}", file=sys.stderr)
        return None, 2
    if refuse_unusable(a, path, "; run `critlang check`"):
        return None, 1
    return a, 0


def refuse_unusable(a: Analysis, label: str, hint: str = "") -> bool:
    """Report a protocol that cannot be evaluated (its errors, or no criteria) on stderr;
    True when it was refused."""
    if not a.ok:
        sources = {a.source.path: a.source}
        for d in a.diagnostics:
            if d.is_error:
                print(render_text(d, sources), file=sys.stderr)
        print(f"critlang: {label}: the protocol has errors{hint}", file=sys.stderr)
        return True
    if a.result is not None and not a.result.protocol.criteria:
        print(f"critlang: {label}: the protocol has no criteria", file=sys.stderr)
        return True
    return False


def _protocol_and_date(args: argparse.Namespace) -> tuple[Analysis | None, dt.date, int]:
    """The checked protocol and the --as-of date; (None, _, exit code) after reporting."""
    analysis, code = _load_protocol(args.protocol)
    if analysis is None:
        return None, dt.date.min, code
    try:
        return analysis, _as_of(args.as_of), 0
    except argparse.ArgumentTypeError as exc:
        print(f"critlang: {exc}", file=sys.stderr)
        return None, dt.date.min, 2


def _as_of(text: str | None) -> dt.date:
    if text is None:
        return dt.date.today()
    try:
        day = dt.date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"--as-of {text!r} is not a date (YYYY-MM-DD)") from exc
    if not AS_OF_RANGE[0] <= day <= AS_OF_RANGE[1]:
        # birth dates, look-back windows and witnesses reach centuries around the
        # screening date; Python's calendar ends at years 1 and 9999 (docs/security.md)
        low, high = (d.isoformat() for d in AS_OF_RANGE)
        raise argparse.ArgumentTypeError(f"--as-of {text}: give a date from {low} to {high}")
    return day


AS_OF_RANGE = (dt.date(1900, 1, 1), dt.date(2199, 12, 31))


def anchor_dates(values: Sequence[str], declared: Sequence[str]) -> dict[str, str]:
    """`--anchor NAME=DATE` values: each a declared anchor (not `enrollment`, which is the
    screening date) given once, with a calendar date (author7 F8: FHIR data hold no
    protocol dates, so every criterion measured from visit 1 stayed unknown).

    Raises argparse.ArgumentTypeError saying what is wrong."""
    out: dict[str, str] = {}
    for text in values:
        name, sep, day = text.partition("=")
        name, day = name.strip(), day.strip()
        if not sep or not name or not day:
            raise argparse.ArgumentTypeError(f"--anchor {text!r}: write NAME=YYYY-MM-DD")
        if name == "enrollment":
            raise argparse.ArgumentTypeError(
                "--anchor enrollment: enrollment is the screening date; use --as-of"
            )
        if name not in declared:
            known = ", ".join(sorted(a for a in declared if a != "enrollment")) or "none"
            raise argparse.ArgumentTypeError(
                f"--anchor {name}: not an anchor of the protocol (its anchors: {known})"
            )
        if name in out:
            raise argparse.ArgumentTypeError(f"--anchor {name}: given twice")
        try:
            dt.date.fromisoformat(day)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"--anchor {name}={day}: not a date (YYYY-MM-DD)"
            ) from None
        out[name] = day
    return out


def _own_as_of(path: Path, default: dt.date) -> dt.date:
    """A record's own evaluation date (`"as_of"`, as witnesses carry it), else the default.

    `--as-of` wins when given; an unreadable or malformed file is left to the reader."""
    from .data.values import loads  # keeps a member given twice (values.Duplicate)

    try:
        data = loads(Path(path).read_text(encoding="utf-8"))
        return dt.date.fromisoformat(data["as_of"])
    except (OSError, ValueError, TypeError, KeyError, AttributeError, RecursionError):
        return default  # two `as_of` dates: the reader refuses the record


def _expand_patients(paths: Sequence[str]) -> tuple[list[Path], list[str]]:
    """Patient records as given, folders searched (not below) for *.json."""
    return find_files(tuple(paths), (".json",), recursive=False)
