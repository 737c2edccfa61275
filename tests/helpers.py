"""Paths shared by the tests."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TRIAL = ROOT / "protocols" / "nct05610826"
SHARED = ROOT.parent / "shared"
