"""Splitting a URL-form DSN the same way on every Python 3.11+.

A PostgreSQL URL may list several hosts (``postgresql://u:p@h1:5432,[::1]:5433/db``); asyncpg
splits that list itself, after ``urllib.parse`` has cut the URL into scheme, netloc, path,
query. How strictly ``urlsplit`` checks brackets in the netloc depends on the patch level, not
the minor version: 3.11.7 checks the text between the first ``[`` and ``]`` only, while newer
security releases (CVE-2025-0938, gh-105704: 3.11.12+, and Debian 12's patched 3.11.2) refuse
any netloc that is not a single ``[address]:port``, so a multi-host DSN raises there. The
allowlist and the redactor must read the same hosts and the same password whatever the patch
level, so they split with ``split_url``: ``urlsplit`` itself (its scheme rules, the control
characters it drops, its NFKC check) with the brackets hidden from its host check.
"""

from __future__ import annotations

from urllib.parse import SplitResult, urlsplit

__all__ = ["split_url"]

_OPEN, _CLOSE = "\ue000", "\ue001"  # private-use code points: NFKC leaves them unchanged
_HIDE = str.maketrans({"[": _OPEN, "]": _CLOSE})
_SHOW = str.maketrans({_OPEN: "[", _CLOSE: "]"})


def split_url(url: str) -> SplitResult:
    """``urlsplit(url)`` without its check of bracketed hosts, the same on every patch level.

    Raises ValueError where every version does: unbalanced brackets in the netloc, a bad port
    (when ``.port`` is read), an NFKC-unsafe netloc. The host list inside the netloc is the
    caller's to parse (asyncpg's rules, ``allowlist.dsn_hosts``)."""
    if _OPEN in url or _CLOSE in url:
        raise ValueError("URL holds a private-use character U+E000 or U+E001")
    parts = urlsplit(url.translate(_HIDE))
    shown = SplitResult(*(part.translate(_SHOW) for part in parts))
    if ("[" in shown.netloc) != ("]" in shown.netloc):
        raise ValueError("Invalid IPv6 URL")
    return shown
