"""Paths shared by the tests."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TRIAL = ROOT / "protocols" / "nct05610826"
SHARED = ROOT.parent / "shared"


def screenshot(page: Path, png: Path, profile: Path) -> None:
    """A headless Chromium screenshot of a local page (no network, a fresh profile)."""
    import subprocess

    subprocess.run(
        [
            "chromium",
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            "--window-size=1100,1800",
            f"--screenshot={png}",
            page.as_uri(),
        ],
        capture_output=True,
        timeout=120,
        check=False,
    )


def write_fhir(folder: Path, files: Iterable[tuple[str, Any]]) -> list[Path]:
    """Writes test inputs: bytes or text as given, a list of resources under a `.ndjson`
    name one per line, anything else as one JSON document; the paths in that order."""
    import json

    paths = []
    for name, content in files:
        path = folder / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        elif isinstance(content, str):
            path.write_text(content)
        elif name.endswith(".ndjson"):
            path.write_text("".join(json.dumps(r) + "\n" for r in content))
        else:
            path.write_text(json.dumps(content))
        paths.append(path)
    return paths
