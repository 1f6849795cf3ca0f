"""``--load-out NAME=TARGET`` specs (k6's ``--out``): parse them, build the outputs.

Sources, as DESIGN says: the option (repeatable), ini ``load_out`` (one per line), env
``NOVALOAD_OUT`` (comma-separated); the plugin gathers them by precedence and passes the list
here. k6's environment knobs of the Prometheus output are honoured where they apply:
``K6_PROMETHEUS_RW_TREND_STATS`` (e.g. ``p(95),p(99),min,max``),
``K6_PROMETHEUS_RW_STALE_MARKERS`` (true/false); and of its OpenTelemetry output:
``K6_OTEL_METRIC_PREFIX``, ``K6_OTEL_SERVICE_NAME``, ``K6_OTEL_SERVICE_VERSION``,
``K6_OTEL_HEADERS`` (``k1=v1,k2=v2``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from pytest_novaload import __version__
from pytest_novaload.errors import ConfigError
from pytest_novaload.outputs.jsonout import JsonOutput
from pytest_novaload.outputs.model import DEFAULT_TREND_STATS
from pytest_novaload.outputs.otlp import OtlpOutput, parse_headers
from pytest_novaload.outputs.otlp import check_url as check_otlp_url
from pytest_novaload.outputs.promrw import PrometheusRemoteWrite, check_url

__all__ = ["OUTPUT_NAMES", "OutSpec", "build_outputs", "parse_out_specs", "split_env"]

OUTPUT_NAMES = ("prometheus-rw", "json", "otlp")
_EXAMPLES = ("'prometheus-rw=http://127.0.0.1:9090/api/v1/write', 'otlp=http://127.0.0.1:4318', "
             "'json=results.json.gz'")
Output = PrometheusRemoteWrite | OtlpOutput | JsonOutput


@dataclass(frozen=True, slots=True)
class OutSpec:
    """One ``NAME=TARGET``."""

    name: str
    target: str


def split_env(value: str) -> list[str]:
    """``NOVALOAD_OUT``'s comma-separated specs (blank items ignored)."""
    return [item.strip() for item in value.split(",") if item.strip()]


def parse_out_specs(specs: Iterable[str]) -> list[OutSpec]:
    """Every spec checked; one ConfigError listing all the bad ones."""
    out: list[OutSpec] = []
    problems: list[str] = []
    for raw in specs:
        name, sep, target = (part.strip() for part in str(raw).partition("="))
        if not sep or not name or not target:
            problems.append(f"--load-out {raw!r}: expected NAME=TARGET, e.g. {_EXAMPLES}")
        elif name not in OUTPUT_NAMES:
            problems.append(f"--load-out {raw!r}: unknown output '{name}'; expected one of "
                            f"{', '.join(OUTPUT_NAMES)}, e.g. {_EXAMPLES}")
        else:
            check = {"prometheus-rw": check_url, "otlp": check_otlp_url}.get(name)
            if check is not None:
                try:
                    check(target)
                except ConfigError as exc:
                    problems.extend(exc.problems)
                    continue
            out.append(OutSpec(name, target))
    if problems:
        raise ConfigError(problems)
    return out


def _bool_env(env: Mapping[str, str], key: str, default: bool) -> bool:
    raw = env.get(key)
    if raw is None or raw.strip() == "":
        return default
    if raw.strip().lower() in ("1", "true", "yes", "on"):
        return True
    if raw.strip().lower() in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{key}={raw!r}: expected true or false")


def build_outputs(specs: Iterable[OutSpec], *, env: Mapping[str, str] | None = None,
                  warn: Callable[[str], None] | None = None,
                  ) -> list[Output]:
    """The output objects for ``specs`` (each starts its thread); close() each at the end."""
    env = env or {}
    stats_raw = env.get("K6_PROMETHEUS_RW_TREND_STATS", "")
    stats = [s for s in stats_raw.split(",") if s.strip()] or list(DEFAULT_TREND_STATS)
    stale = _bool_env(env, "K6_PROMETHEUS_RW_STALE_MARKERS", False)
    outputs: list[Output] = []
    try:
        for spec in specs:
            if spec.name == "prometheus-rw":
                outputs.append(PrometheusRemoteWrite(spec.target, trend_stats=stats,
                                                     stale_markers=stale, warn=warn))
            elif spec.name == "otlp":
                outputs.append(OtlpOutput(
                    spec.target, prefix=env.get("K6_OTEL_METRIC_PREFIX", ""),
                    service=env.get("K6_OTEL_SERVICE_NAME", "") or "k6",
                    service_version=env.get("K6_OTEL_SERVICE_VERSION", "") or __version__,
                    headers=parse_headers(env.get("K6_OTEL_HEADERS", "")), warn=warn))
            else:
                outputs.append(JsonOutput(spec.target, warn=warn))
    except Exception:
        for o in outputs:
            o.close(timeout=1)
        raise
    return outputs
