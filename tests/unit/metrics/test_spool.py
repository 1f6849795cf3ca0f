"""LineSpool: JSON lines on disk, read back in order, nothing kept in memory."""

from __future__ import annotations

import os

from pytest_novaload.metrics.spool import LineSpool


def test_lines_come_back_in_order_with_their_values() -> None:
    spool = LineSpool([{"t": 0, "metric": "http_reqs", "count": 3}])
    assert spool._file is not None and len(spool) == 1
    spool.extend({"t": i, "metric": "x", "p95": i / 3, "tags": {"name": "é"}}
                 for i in range(1, 20_000))
    spool.append({"t": 20_000, "big": "y" * 200_000})   # longer than a read chunk
    lines = list(spool)
    assert len(lines) == len(spool) == 20_001
    assert lines[0] == {"t": 0, "metric": "http_reqs", "count": 3}
    assert lines[5] == {"t": 5, "metric": "x", "p95": 5 / 3, "tags": {"name": "é"}}
    assert lines[-1]["big"] == "y" * 200_000
    assert list(spool) == lines                 # iterating again reads the same
    spool.append({"t": 20_001})                 # appending after a read appends at the end
    assert [line["t"] for line in spool][-3:] == [19_999, 20_000, 20_001]


def test_the_file_is_unlinked_and_closed_with_the_spool() -> None:
    spool = LineSpool()
    assert list(spool) == [] and len(spool) == 0 and spool._file is None
    spool.append({"secret": "already redacted"})
    assert spool._file is not None
    fd = spool._file.fileno()
    assert os.readlink(f"/proc/self/fd/{fd}").endswith("(deleted)")  # nothing on the disk
    spool.close()
    assert list(spool) == [] and len(spool) == 0
