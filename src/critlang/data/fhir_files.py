"""The files FHIR data arguments name: files as given, folders searched (docs/fhir.md)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from ..source import find_files

DATA_SUFFIXES = (".json", ".ndjson", ".jsonl")


def data_files(
    paths: Iterable[str], skipped: list[tuple[str, str]] | None = None
) -> tuple[list[Path], list[str]]:
    """FHIR files given as files or folders (*.json, *.ndjson, *.jsonl, in any letter
    case), in a stable order.

    A file named twice (twice over, or directly and through its folder, or by a link) is a
    problem: read twice, a Bundle's patients would be counted twice. Other files found in
    a folder are not read; each is added to `skipped` as (path, why), so that the reading
    tally counts it as an unusable file and no patient vanishes without a word."""
    files: list[Path] = []
    problems: list[str] = []
    for p in map(Path, paths):
        if not p.is_dir():
            found, missing = find_files((str(p),), DATA_SUFFIXES)
            files += found
            problems += missing
            continue
        before = len(files)
        for f in sorted(f for f in p.rglob("*") if f.is_file()):
            if f.suffix.lower() in DATA_SUFFIXES:  # b.JSON is JSON
                files.append(f)
            elif skipped is not None:
                compressed = f.suffix.lower() in (".gz", ".zip", ".bz2", ".xz", ".zst")
                why = (
                    "compressed: not read (decompress it first)"
                    if compressed
                    else "not read: only .json, .ndjson and .jsonl files of a folder are read"
                )
                skipped.append((str(f), why))
        if len(files) == before:
            problems.append(f"{p}: no {' or '.join(DATA_SUFFIXES)} files in this folder")
    seen: dict[str, Path] = {}
    for f in files:
        try:
            key = str(f.resolve())
        except (OSError, RuntimeError):  # a link loop: opening it reports the file
            key = str(f.absolute())
        if key in seen:
            also = "" if str(seen[key]) == str(f) else f" (also as {seen[key]})"
            problems.append(f"{f}: named more than once{also}; name each file once")
        else:
            seen[key] = f
    return files, problems
