"""Where the real captures, payloads and logs live: ../shared/data beside the checkout.

They are never copied into this repository; tests read them in place and skip with a
clear reason when the folder is absent.
"""

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("SHIELDWALL_SHARED_DATA", REPO.parent / "shared" / "data"))


def shared_file(relative: str) -> Path:
    path = SHARED_DATA / relative
    if not path.exists():
        pytest.skip(f"shared data file {relative} is not present at {SHARED_DATA}")
    return path


# What the suite prints at its end, whatever the verbosity (pytest hides a passing test's
# output): the coverage counts and figures the issues ask CI to show.
FIGURES: list[tuple[str, str]] = []


def report_figures(title: str, text: str) -> None:
    """Print ``text`` under ``title`` in the summary at the end of the pytest run."""
    FIGURES.append((title, text))
