"""Screenshots of report.html for a passing and a failing run, to look at.

    python bench/report_screenshots.py [OUT_DIR]     # default: ./report-screenshots

Each run is a real pytest session in a scratch folder (a load against a loopback HTTP server
started by the test file itself, ~10 s): "passing" stays within its thresholds, "failing"
breaks three and gets HTTP 500s. Writes OUT_DIR/{passing,failing}.png and .html (and the run's
summary.json and timeseries.ndjson) and says
whether Chromium logged console errors. Needs Debian's chromium (apt-get install -y chromium).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests import chromium

TEST_FILE = '''
import http.server, os, threading, time
import pytest

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path.startswith("/slow"):
            time.sleep(0.03)
        code = 500 if self.path.startswith("/fail") else 200
        self.send_response(code)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass

server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
threading.Thread(target=server.serve_forever, daemon=True).start()
os.environ["API_URL"] = f"http://127.0.0.1:{server.server_port}"
FAILING = os.environ.get("SCREENSHOT_RUN") == "failing"

@pytest.mark.load(
    stages=[("3s", 8), ("4s", 8), ("3s", 0)],
    thresholds={
        "http_req_duration": ["p(95)<%s" % (20 if FAILING else 500), "p(99)<1000"],
        "http_req_failed": ["rate<0.01"],
        "checks": ["rate>0.9"],
    },
)
def test_vm_api(load):
    async def user(vu):
        path = "/slow" if vu.iteration % 4 == 0 else "/api/v1/vms"
        if FAILING and vu.iteration % 10 == 0:
            path = "/fail"
        r = await vu.http.get(path, name=path)
        vu.check(r, {"status is 200": lambda r: r.status_code == 200})
        await vu.sleep(0.05)

    load.run(user)
'''


def run(kind: str, work: Path) -> Path:
    """One pytest session in ``work``; returns its report.html."""
    work.mkdir(parents=True)
    (work / "test_report_demo.py").write_text(TEST_FILE)
    (work / "pytest.ini").write_text("[pytest]\n")
    env = {**os.environ, "SCREENSHOT_RUN": kind}
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
                           "--load-progress", "off", "--load-results", str(work / "results")],
                          cwd=work, env=env, capture_output=True, text=True, timeout=300)
    expected = 0 if kind == "passing" else 1
    if proc.returncode != expected:
        raise SystemExit(f"{kind} run: exit {proc.returncode}, expected {expected}\n"
                         f"{proc.stdout[-3000:]}\n{proc.stderr[-2000:]}")
    return next((work / "results").glob("*/report.html"))


def main(argv: list[str]) -> int:
    out = Path(argv[0] if argv else "report-screenshots")
    out.mkdir(parents=True, exist_ok=True)
    if chromium.find() is None:
        print(f"chromium not found: {chromium.INSTALL}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="novaload-shots-") as tmp:
        for kind in ("passing", "failing"):
            page = run(kind, Path(tmp) / kind)
            html = out / f"{kind}.html"
            html.write_text(page.read_text())
            for name in ("summary.json", "timeseries.ndjson"):   # to re-render after a change
                (out / f"{kind}-{name}").write_text((page.parent / name).read_text())
            png = chromium.screenshot(html, out / f"{kind}.png")
            errors = chromium.render(html).console_errors
            print(f"{kind}: {png}  console errors: {len(errors)}")
            for line in errors:
                print(f"  {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
