"""Real receivers on loopback: Prometheus with its remote-write receiver on (Debian's package),
and VictoriaMetrics for OTLP/HTTP metrics (Debian 13's package; see ``victoria_metrics``)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

TIME_FACTOR = float(os.environ.get("NOVALOAD_TIME_FACTOR", "1") or 1)
INSTALL = "apt-get install -y prometheus"
VM_INSTALL = ("Debian 13's `apt-get install victoria-metrics` installs it; on Debian 12, whose "
              "package (1.79) predates OTLP ingestion (1.92), .ci/run takes the binary from "
              "Debian 13's .deb")


class Prometheus:
    """The server's base URL and a PromQL helper."""

    def __init__(self, base: str, proc: subprocess.Popen[bytes], log: Path) -> None:
        self.base = base
        self.proc = proc
        self.log = log

    @property
    def write_url(self) -> str:
        return f"{self.base}/api/v1/write"

    def api(self, path: str, **params: object) -> Any:
        query = urllib.parse.urlencode({k: str(v) for k, v in params.items()})
        with urllib.request.urlopen(f"{self.base}{path}?{query}", timeout=10) as resp:
            body = json.loads(resp.read())
        assert body["status"] == "success", body
        return body["data"]

    def query(self, expr: str, at: float) -> list[dict[str, Any]]:
        """Instant query ``expr`` at unix time ``at``: the vector's items."""
        data = self.api("/api/v1/query", query=expr, time=f"{at:.3f}")
        assert data["resultType"] == "vector", data
        return list(data["result"])


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class VictoriaMetrics(Prometheus):
    """A VictoriaMetrics server: OTLP/HTTP in at ``otlp_url``, Prometheus' query API out."""

    @property
    def otlp_url(self) -> str:
        return f"{self.base}/opentelemetry"  # the output appends /v1/metrics

    def flush(self) -> None:
        """Make everything received so far searchable (VictoriaMetrics buffers ~1 s)."""
        with urllib.request.urlopen(f"{self.base}/internal/force_flush", timeout=10) as resp:
            resp.read()


def _wait_ready(proc: subprocess.Popen[bytes], url: str, name: str, log: Path) -> None:
    deadline = time.monotonic() + 30 * TIME_FACTOR
    while True:
        if proc.poll() is not None:
            text = log.read_text("utf-8", "replace")
            pytest.fail(f"{name} exited with {proc.returncode}:\n{text}")
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"{name} not ready within 30 s:\n{log.read_text('utf-8', 'replace')}")
        time.sleep(0.1)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture(scope="session")
def victoria_metrics(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VictoriaMetrics]:
    """VictoriaMetrics >= 1.92 (OTLP ingestion at /opentelemetry/v1/metrics), from PATH or
    ``NOVALOAD_VICTORIA_METRICS``; skipped when absent, failed when too old for OTLP."""
    binary = os.environ.get("NOVALOAD_VICTORIA_METRICS") or shutil.which("victoria-metrics")
    if not binary:
        pytest.skip(f"victoria-metrics is not installed; {VM_INSTALL}")
    root = tmp_path_factory.mktemp("victoria-metrics")
    port = _free_port()
    log = root / "victoria-metrics.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [binary, f"-storageDataPath={root / 'data'}", f"-httpListenAddr=127.0.0.1:{port}",
             "-retentionPeriod=100y", "-search.latencyOffset=0s", "-search.disableCache"],
            stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(proc, f"{base}/health", "victoria-metrics", log)
        probe = urllib.request.Request(f"{base}/opentelemetry/v1/metrics", data=b"",
                                       method="POST",
                                       headers={"Content-Type": "application/x-protobuf"})
        try:
            with urllib.request.urlopen(probe, timeout=5) as resp:
                resp.read()
        except urllib.error.HTTPError as exc:
            pytest.fail(f"{binary} does not ingest OTLP (answered {exc.code} to an empty "
                        f"export): it needs VictoriaMetrics >= 1.92; {VM_INSTALL}")
        yield VictoriaMetrics(base, proc, log)
    finally:
        _stop(proc)


@pytest.fixture(scope="session")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip(f"the prometheus server is not installed; `{INSTALL}` (Debian) installs "
                    "it, and CI's .ci/run does")
    root = tmp_path_factory.mktemp("prometheus")
    config = root / "prometheus.yml"
    config.write_text("global:\n  scrape_interval: 15s\nscrape_configs: []\n")
    port = _free_port()
    log = root / "prometheus.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [binary, "--web.enable-remote-write-receiver", f"--config.file={config}",
             f"--storage.tsdb.path={root / 'data'}", f"--web.listen-address=127.0.0.1:{port}"],
            stdout=out, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(proc, f"{base}/-/ready", "prometheus", log)
        yield Prometheus(base, proc, log)
    finally:
        _stop(proc)
