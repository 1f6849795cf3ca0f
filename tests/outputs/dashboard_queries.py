"""Regenerate ``k6_dashboard_queries.json`` from Grafana's "k6 Prometheus" dashboard JSON.

    python -m tests.outputs.dashboard_queries PATH/TO/k6-prometheus.json

The dashboard lives in grafana/xk6-output-prometheus-remote at
``grafana/dashboards/k6-prometheus.json`` (AGPL; not copied here, only its query expressions
are written out as data). Template variables are replaced as Grafana would for one run:

- ``$testid``: ``{testid}``, which the test fills with the PromQL-regex-escaped nodeid (Grafana
  puts the chosen test ids there, as a regex, for ``testid=~"$testid"``);
- ``$quantile_stat``: one query per stat we send (the dashboard's drop-down lists the
  ``k6_http_req_duration_*`` suffixes it finds, so every stat is a choice a user can make);
- ``$__rate_interval``: ``1m`` (Grafana's value for a 15 s scrape interval: 4 x 15 s).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

SOURCE = {"repository": "grafana/xk6-output-prometheus-remote",
          "commit": "9cf0f9efebdcc3609a10319decc62a51ea021350",
          "path": "grafana/dashboards/k6-prometheus.json"}
STATS = ("p99", "p95", "p90", "med", "avg", "min", "max")
RATE_INTERVAL = "1m"
NOT_MEASURED = {
    "k6_http_req_blocked_": "HTTP phase timings are not measured (k6 splits a request into "
                            "blocked/connecting/tls/sending/waiting/receiving)",
    "k6_http_req_tls_handshaking_": "HTTP phase timings are not measured",
    "k6_http_req_sending_": "HTTP phase timings are not measured",
    "k6_http_req_waiting_": "HTTP phase timings are not measured",
    "k6_http_req_receiving_": "HTTP phase timings are not measured",
}


def _targets(panels: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    out: list[tuple[str, dict[str, Any]]] = []
    for p in panels:
        out += [(p.get("title") or "", t) for t in p.get("targets", []) if t.get("expr")]
        out += _targets(p.get("panels", []))
    return out


def extract(dashboard: dict[str, Any]) -> dict[str, Any]:
    queries = []
    for title, target in _targets(dashboard["panels"]):
        raw = target["expr"]
        stats = STATS if "$quantile_stat" in raw else (None,)
        for stat in stats:
            expr = raw.replace("$testid", "{testid}").replace("$__rate_interval", RATE_INTERVAL)
            if stat is not None:
                expr = expr.replace("$quantile_stat", stat)
            reason = next((why for prefix, why in NOT_MEASURED.items() if prefix in expr), None)
            queries.append({"panel": title, "refId": target.get("refId"),
                            "legend": target.get("legendFormat"), "raw": raw, "expr": expr,
                            "quantile_stat": stat, "covered": reason is None,
                            **({"why_not": reason} if reason else {})})
    variables = {v["name"]: {"query": (v.get("query") or {}).get("query")
                             if isinstance(v.get("query"), dict) else v.get("query"),
                             "regex": v.get("regex") or None}
                 for v in dashboard["templating"]["list"] if v.get("type") == "query"}
    return {"source": {**SOURCE, "title": dashboard.get("title"), "uid": dashboard.get("uid")},
            "substitutions": {"$testid": "{testid}: the nodeid, regex-escaped",
                              "$quantile_stat": list(STATS),
                              "$__rate_interval": RATE_INTERVAL},
            "variables": variables, "queries": queries}


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    data = extract(json.loads(Path(argv[0]).read_text()))
    target = Path(__file__).with_name("k6_dashboard_queries.json")
    target.write_text(json.dumps(data, indent=1) + "\n")
    print(f"{len(data['queries'])} queries -> {target}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
