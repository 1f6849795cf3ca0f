"""The store's cap on distinct tag sets per metric: one warning when it is reached, later
tag values folded into an overflow series, memory bounded whatever the tags."""

from __future__ import annotations

from pytest_novaload.metrics import MetricStore, make_tags
from pytest_novaload.metrics.store import MAX_SERIES, OVERFLOW


def _record(store: MetricStore, n: int, *, status: str = "200") -> None:
    for i in range(n):
        store.trend("http_req_duration", make_tags(name=f"/vms/{i}", method="GET",
                                                   status=status)).add(1.0)


def test_past_the_cap_values_fold_into_one_series_and_warn_once() -> None:
    store = MetricStore()
    warnings: list[str] = []
    store.on_series_limit = warnings.append
    _record(store, MAX_SERIES + 500)
    series = store.series("http_req_duration")
    assert len(series) == MAX_SERIES + 1
    folded = make_tags(name=OVERFLOW, method="GET", status="200")
    assert series[folded].value("count") == 500
    assert store.aggregate("http_req_duration").value("count") == MAX_SERIES + 500
    (warning,) = warnings
    assert warning.startswith(f"http_req_duration reached {MAX_SERIES} series")
    assert "tag 'name'" in warning and "name=" in warning and OVERFLOW in warning
    # Series that existed before the cap keep their own samples.
    store.trend("http_req_duration", make_tags(name="/vms/7", method="GET",
                                               status="200")).add(5.0)
    assert store.aggregate("http_req_duration", {"name": "/vms/7"}).value("count") == 2


def test_memory_stays_bounded_with_unbounded_tags() -> None:
    store = MetricStore()
    for status in range(300):  # a second tag that also varies: the slack then one series
        _record(store, 50, status=str(status))
    assert len(store.series("http_req_duration")) <= MAX_SERIES + 101
    assert len(store._flat) <= 2 * (MAX_SERIES + 101)  # the passed tags of folded values
    assert store.aggregate("http_req_duration").value("count") == 300 * 50


def test_other_metrics_are_not_affected() -> None:
    store = MetricStore()
    _record(store, MAX_SERIES + 10)
    store.counter("http_reqs", make_tags(name="/a")).add()
    assert len(store.series("http_reqs")) == 1
    assert len(store.series("http_req_duration")) == MAX_SERIES + 1
