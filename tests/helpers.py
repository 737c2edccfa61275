"""Paths shared by the tests."""

from __future__ import annotations

from pathlib import Path

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
