"""Headless Chromium for the repository's tooling (the benchmark's PNG plots); each step's tests find their own."""

from __future__ import annotations

from pathlib import Path

# Chromium's headless shell, the build Playwright itself runs headless pages in, at about half the cost of the full
# browser: Debian's, else Debian's full Chromium, else the one Playwright downloads (None: Playwright's choice).
DEBIAN_CHROMIUMS = [Path("/usr/bin/chromium-headless-shell"), Path("/usr/bin/chromium")]
# Headless on a machine without a display, a GPU or a way out: nothing to set up, update or sync.
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]


def find_chromium() -> Path | None:
    """The Chromium to launch: Debian's, or None for the one Playwright downloads."""
    return next((path for path in DEBIAN_CHROMIUMS if path.exists()), None)
