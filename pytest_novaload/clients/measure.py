"""The one helper through which every client emits the samples of a timed call.

A call (an HTTP exchange, a SQL statement) gives three samples under one tag set: its
duration, one more call, and whether it failed (k6's trio: http_req_duration, http_reqs,
http_req_failed). The cause of a failed sample goes to ``ClientContext.report``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pytest_novaload.clients.base import Tags, with_tags

if TYPE_CHECKING:
    from pytest_novaload.metrics import MetricStore
    from pytest_novaload.metrics.sinks import Counter, Rate, Trend

__all__ = ["CallSinks", "WsSinks"]


class CallSinks:
    """The (duration trend, count counter, failed rate) sinks of one tag set, looked up once."""

    __slots__ = ("count", "duration", "failed")

    def __init__(self, store: MetricStore, metrics: tuple[str, str, str], tags: Tags) -> None:
        duration, count, failed = metrics
        self.duration: Trend = store.trend(duration, tags)
        self.count: Counter = store.counter(count, tags)
        self.failed: Rate = store.rate(failed, tags)

    def record(self, ms: float | None, failed: bool) -> None:
        """One call: its duration in ms (None when it never ran, e.g. no connection)."""
        if ms is not None:
            self.duration.add(ms)
        self.count.add()
        self.failed.add(failed)


class WsSinks:
    """The sinks of one ``vu.ws`` ``name`` tag (over the VU's base tags), looked up once."""

    __slots__ = ("connecting", "duration", "failed", "latency", "ping", "received", "sent",
                 "sessions")

    def __init__(self, store: MetricStore, name: str, base: Tags = ()) -> None:
        tags = with_tags(base, (("name", name),))
        self.connecting: Trend = store.trend("ws_connecting", tags)
        self.sessions: Counter = store.counter("ws_sessions", tags)
        self.duration: Trend = store.trend("ws_session_duration", tags)
        self.sent: Counter = store.counter("ws_msgs_sent", tags)
        self.received: Counter = store.counter("ws_msgs_received", tags)
        self.ping: Trend = store.trend("ws_ping", tags)
        self.latency: Trend = store.trend("ws_msg_latency", tags)
        self.failed: Rate = store.rate("ws_failed", tags)
