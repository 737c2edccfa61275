"""Screening FHIR files on several processor cores, with the output of one.

Reading FHIR (decoding JSON, grouping resources by patient, extracting facts) is most
of a screening's time, and each bundle file is read on its own. So the files are cut
into runs of consecutive files; worker processes (forked: they share the compiled
protocol, nothing is pickled but file names and results) each screen one run with
`screen.screen`, and the results are put back together in file order. Every count is a
sum over patients or resources, the rows keep file order, and what needs every patient
at once (patients sharing an id across files) is done after merging: the output is the
same, byte for byte, whatever the number of jobs (tests/test_screen_jobs.py).

NDJSON files are not cut (one patient's resources may be in any of them): they are read
in this process after the bundles, as `read_groups` orders them.

Errors: an `EvaluationFault` in a worker is raised here, with its message.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

from .backends.python import Compiled
from .data.fhir import Extractor, Tally, read_fhir
from .evaluate import EvaluationFault
from .screen import AttritionRow, Screening, flag_shared_ids, screen
from .screen_elsewhere import flag_elsewhere

# below this many bundle files a second process costs more than it saves (fork, merging)
MIN_FILES_PER_JOB = 16
_NDJSON = (".ndjson", ".jsonl")

# what forked workers share with the parent (set before the pool starts, read only)
_shared: dict[str, Any] = {}
T = TypeVar("T")


def default_jobs() -> int:
    """The processor cores this process may use (os.sched_getaffinity where it exists)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def screen_files(
    compiled: Compiled,
    files: list[Path],
    extractor: Extractor,
    as_of: dt.date,
    tally: Tally,
    jobs: int = 1,
    progress: Callable[[int], None] | None = None,
    explain: bool = False,
) -> Screening:
    """Every patient of `files` screened (see `screen.screen`), on up to `jobs` processes.

    `tally` receives the reading counts. `progress(n)` is called with the number of
    patients screened so far.
    """
    runs, ndjson = split_for_jobs(files, jobs)
    if not runs:
        patients = read_fhir(files, extractor, as_of, tally)
        out = screen(compiled, patients, as_of, progress, tally, extractor, explain)
        flag_elsewhere(out, compiled, extractor)
        return out
    parts: list[Screening] = []
    done = 0

    def work(run: list[Path]) -> Screening | str:
        tally = Tally()
        patients = read_fhir(run, extractor, as_of, tally)
        try:
            return screen(compiled, patients, as_of, None, tally, extractor, explain, False)
        except EvaluationFault as exc:  # its message crosses the process boundary
            return str(exc)

    for part in fork_map(work, runs, jobs):
        if isinstance(part, str):
            raise EvaluationFault(part)
        parts.append(part)
        done += len(part.patients)
        if progress is not None:
            progress(done)
    if ndjson:
        rest = Tally()
        patients = read_fhir(ndjson, extractor, as_of, rest)
        parts.append(screen(compiled, patients, as_of, None, rest, extractor, explain, False))
    out = _merge(parts, tally)
    flag_elsewhere(out, compiled, extractor)
    return out


def split_for_jobs(files: list[Path], jobs: int) -> tuple[list[list[Path]], list[Path]]:
    """(runs of bundle files for the workers, the files read here after them: NDJSON);
    no runs, and every file read here, when one process is as good (see `file_runs`)."""
    bundles = [f for f in files if f.suffix.lower() not in _NDJSON]
    runs = file_runs(bundles, jobs) if can_fork() else []
    if len(runs) < 2:
        return [], files
    return runs, [f for f in files if f.suffix.lower() in _NDJSON]


def can_fork() -> bool:
    return "fork" in multiprocessing.get_all_start_methods()


def file_runs(files: list[Path], jobs: int) -> list[list[Path]]:
    """Runs of consecutive files, a few per job so that a slow run does not hold the rest;
    one run when there are too few files for a second process to pay."""
    if jobs < 2 or len(files) < 2 * MIN_FILES_PER_JOB:
        return [files] if files else []
    count = min(jobs * 4, len(files) // MIN_FILES_PER_JOB)
    size = -(-len(files) // count)
    return [files[i : i + size] for i in range(0, len(files), size)]


def fork_map(work: Callable[[list[Path]], T], runs: list[list[Path]], jobs: int) -> Iterator[T]:
    """work(run) for each run, on up to `jobs` forked processes, yielded in run order.
    `work` (a closure: the compiled protocol, the extractor) reaches the workers by the
    fork itself, never pickled; only file names and results cross."""
    _shared["work"] = work
    try:
        with multiprocessing.get_context("fork").Pool(min(jobs, len(runs))) as pool:
            yield from pool.imap(_call, runs)
    finally:
        _shared.clear()


def _call(run: list[Path]) -> Any:
    return _shared["work"](run)


def _merge(parts: list[Screening], tally: Tally) -> Screening:
    first = parts[0]
    out = Screening(first.as_of, first.criteria, tally=tally)
    out.absent_means_no = first.absent_means_no
    out.coverage = dict.fromkeys(first.coverage, 0)
    out.attrition = [AttritionRow(r.id, r.section) for r in first.attrition]
    counted = ("met", "not_met", "unknown", "not_applicable", "passed", "not_ruled_out")
    for part in parts:
        out.patients.extend(part.patients)
        out.deceased += part.deceased
        out.maybe_deceased += part.maybe_deceased
        for name, count in part.coverage.items():
            out.coverage[name] += count
        for total, row in zip(out.attrition, part.attrition, strict=True):
            for name in counted:
                setattr(total, name, getattr(total, name) + getattr(row, name))
        if part.tally is not None:
            tally.merge(part.tally)
    flag_shared_ids(out)
    return out
