"""Headless Chromium (Debian's `chromium`) for looking at report.html like a person would.

``render(page)`` loads a local HTML file with scripts' and the page's console messages logged,
returns the rendered DOM and every console error line; ``screenshot(page, png)`` saves a PNG.
No network: the page is a file and every background service of the browser is switched off.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

INSTALL = "apt-get install -y chromium"
_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
          "--disable-background-networking", "--disable-component-update", "--disable-sync",
          "--disable-extensions", "--disable-default-apps")
# What Chromium logs for a page's console errors and uncaught exceptions (not its own dbus noise).
_CONSOLE = re.compile(r"Uncaught|CONSOLE\(\d+\)|:CONSOLE|Refused to|Failed to load resource")


def find() -> str | None:
    """The chromium binary, or None (then: ``INSTALL``)."""
    return shutil.which("chromium") or shutil.which("chromium-browser")


@dataclass
class Rendered:
    dom: str
    console_errors: list[str]


def _run(page: Path, *extra: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    exe = find()
    if exe is None:
        raise RuntimeError(f"chromium not found; install it with `{INSTALL}`")
    with tempfile.TemporaryDirectory(prefix="novaload-chromium-") as profile:
        return subprocess.run(
            [exe, *_FLAGS, f"--user-data-dir={profile}", *extra, page.resolve().as_uri()],
            capture_output=True, text=True, timeout=timeout, check=False)


def render(page: Path) -> Rendered:
    """The DOM after load (``--dump-dom``) and the console's error lines."""
    proc = _run(page, "--enable-logging=stderr", "--v=0", "--dump-dom")
    if proc.returncode != 0 or "<html" not in proc.stdout:
        raise RuntimeError(f"chromium failed on {page} (exit {proc.returncode}):\n"
                           f"{proc.stderr[-2000:]}")
    errors = [line for line in proc.stderr.splitlines() if _CONSOLE.search(line)]
    return Rendered(proc.stdout, errors)


def screenshot(page: Path, png: Path, *, size: tuple[int, int] = (1400, 2400)) -> Path:
    """Save a screenshot of ``page`` (``size`` = window width, height) to ``png``."""
    proc = _run(page, f"--screenshot={png.resolve()}", f"--window-size={size[0]},{size[1]}")
    if not png.exists():
        raise RuntimeError(f"chromium wrote no screenshot of {page} (exit {proc.returncode}):\n"
                           f"{proc.stderr[-2000:]}")
    return png
