"""Find a Chromium for the browser tests; `python -m tests.browser.chromium` prints it or exits 1.

Playwright's own browser download needs hosts that classrooms and CI often cannot reach,
so the tests drive a Chromium installed by the system (Debian's `chromium`, or Chrome).
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

CANDIDATES = (
    "chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome",
    "/Applications/Chromium.app/Contents/MacOS/Chromium",
    "/Applications/Google Chrome.app/Contents/MacOS/Google Chrome",
    r"C:\Program Files\Google\Chrome\Application\chrome.exe",
)


def find_chromium() -> str | None:
    """COURSE_CHROMIUM if set, else the first Chromium or Chrome found on PATH or in the usual places."""
    configured = os.environ.get("COURSE_CHROMIUM")
    if configured:
        return configured if Path(configured).is_file() else None
    for candidate in CANDIDATES:
        found = shutil.which(candidate) or (candidate if Path(candidate).is_file() else None)
        if found:
            return found
    return None


if __name__ == "__main__":
    path = find_chromium()
    print(path or "no Chromium found (set COURSE_CHROMIUM=/path/to/chromium)")
    sys.exit(0 if path else 1)
