"""What the four NovaCron load suites read from the target before their load starts.

The targets themselves come from the environment (API_URL, WS_URL, DWCP_WS_URL, API_TOKEN,
DATABASE_URL); with none given, the root conftest.py starts the stand-in and PostgreSQL.
"""

from __future__ import annotations

import json
import os
import urllib.request

import pytest

# The k6 plan reads VMs 1..1000; the stand-in seeds NOVACRON_SIM_VMS of them (default 1000).
SEEDED_VMS = int(os.environ.get("NOVACRON_SIM_VMS", "1000"))


@pytest.fixture(scope="session")
def api_url() -> str:
    url = os.environ.get("API_URL")
    if not url:
        pytest.skip("no NovaCron target: API_URL is unset and the stand-in was not started")
    return url.rstrip("/")


def fetch_zones(api_url: str, token: str | None = None) -> list[str]:
    """The zone names of a target (GET /api/v1/zones), in the target's order."""
    headers = {"Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(f"{api_url}/api/v1/zones", headers=headers)
    no_proxy = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with no_proxy.open(request, timeout=10) as response:
        names = [z["name"] for z in json.load(response)["zones"]]
    assert len(names) >= 2, f"{api_url} has fewer than two zones ({names}): nothing to migrate"
    return names


@pytest.fixture(scope="session")
def zones(api_url: str) -> list[str]:
    """The target's zone names."""
    return fetch_zones(api_url, os.environ.get("API_TOKEN"))


@pytest.fixture(scope="session")
def vm_ids() -> range:
    """The VM ids the suites read (the plan's 1..1000: seeded, never deleted by the suites)."""
    return range(1, SEEDED_VMS + 1)
