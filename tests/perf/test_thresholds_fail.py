"""The API suite's thresholds catch a slow NovaCron: with the stand-in's latency knob raised to
600 ms, a short copy of the API scenario fails on P95 < 500 ms and on nothing else."""

from __future__ import annotations

import pytest

from novacron_sim.launch import StandIn
from tests.perf.conftest import SEEDED_VMS

LATENCY_MS = 600   # above the plan's P95 < 500 ms, below its P99 < 1 s and VM creation < 2 s

SHORT_API_COPY = """
import pytest

from tests.perf.test_api_load import THRESHOLDS, vm_crud_user


@pytest.mark.load(vus=3, duration="1s", thresholds=THRESHOLDS)
def test_api_vm_crud_short(load):
    user = vm_crud_user(load.trend("vm_creation_time"), %(zones)r, range(1, %(vms)d + 1),
                        think=0)
    load.run(user)
"""


def test_api_thresholds_fail_when_the_api_is_slow(pytester: pytest.Pytester, novacron: StandIn,
                                                  zones: list[str]) -> None:
    """Plan 1's thresholds against a NovaCron answering every API call in 600 ms."""
    try:
        before = novacron.config()["latency_ms"]
    except RuntimeError as exc:
        pytest.skip(f"needs the stand-in's latency knob: {exc}")
    pytester.makeini("[pytest]\n")
    pytester.makepyfile(SHORT_API_COPY % {"zones": zones, "vms": SEEDED_VMS})
    novacron.configure(latency_ms=LATENCY_MS)
    try:
        result = pytester.runpytest("-p", "no:cacheprovider", "--load-progress", "off",
                                    "--load-scale", "1", "--load-duration-scale", "1",
                                    "--load-results", "off")
    finally:
        novacron.configure(latency_ms=before)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([
        "*1 of 4 thresholds failed for*test_api_vm_crud_short*",
        "*http_req_duration p(95)<500 -> * ms  FAILED*",
        "*http_req_duration p(99)<1000 -> * ms  ok*",
        "*http_req_failed rate<0.01 -> 0 (0%)  ok*",
        "*vm_creation_time p(95)<2000 -> * ms  ok*",
    ])
