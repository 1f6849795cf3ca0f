"""MetricStore: series by tags, kinds, aggregation, shard merging, windows, transport."""

from __future__ import annotations

import json
import random

import pytest

from pytest_novaload.errors import ConfigError
from pytest_novaload.metrics import (
    Counter,
    Gauge,
    MetricStore,
    Rate,
    Trend,
    make_tags,
    metric_key,
    new_sink,
    parse_metric_key,
)
from tests.unit.metrics.merging import both_groupings


@pytest.mark.parametrize(("kind", "cls"), [("trend", Trend), ("counter", Counter),
                                           ("rate", Rate), ("gauge", Gauge)])
def test_new_sink_is_an_empty_sink_of_its_kind(kind: str, cls: type) -> None:
    sink = new_sink(kind)
    assert type(sink) is cls and sink.kind == kind
    assert sink.to_dict() == cls().to_dict()


def test_new_sink_gives_a_gauge_its_shard_combine() -> None:
    gauge = new_sink("gauge", "sum")
    assert isinstance(gauge, Gauge) and gauge.combine == "sum"
    assert isinstance(new_sink("gauge"), Gauge) and new_sink("gauge").combine == "max"

# -- tags and keys --------------------------------------------------------------------------------


def test_make_tags_sorts_and_stringifies() -> None:
    assert make_tags({"status": 201, "method": "POST"}, name="create_vm") == (
        ("method", "POST"), ("name", "create_vm"), ("status", "201"))
    assert make_tags() == ()
    assert make_tags({"a": 1}, a=2) == (("a", "2"),)


@pytest.mark.parametrize(("key", "name", "filters"), [
    ("http_req_duration", "http_req_duration", {}),
    ("http_req_duration{name:create_vm}", "http_req_duration", {"name": "create_vm"}),
    ("http_req_duration{name:create_vm,method:GET}", "http_req_duration",
     {"name": "create_vm", "method": "GET"}),
    (" http_reqs { status : 500 , name:/api/v1/vms } ", "http_reqs",
     {"status": "500", "name": "/api/v1/vms"}),
    # k6's group path "::login" is our "login"; nested "::a::b" is "a::b"
    ("group_duration{group:::login}", "group_duration", {"group": "login"}),
    ("group_duration{group:::a::b}", "group_duration", {"group": "a::b"}),
    ("group_duration{group:a::b}", "group_duration", {"group": "a::b"}),
    # k6 (TestAddSubmetric) trims spaces, then quotes, of tags and values
    ("http_reqs{name:'foo'}", "http_reqs", {"name": "foo"}),
    ('http_reqs{name:"foo"}', "http_reqs", {"name": "foo"}),
    ("x{a : '1' , b : \"2\"}", "x", {"a": "1", "b": "2"}),
    ("x{\" a\" : ' 1'}", "x", {" a": " 1"}),
    ("x{url:'http://h:8080/'}", "x", {"url": "http://h:8080/"}),
])
def test_parse_metric_key(key: str, name: str, filters: dict[str, str]) -> None:
    assert parse_metric_key(key) == (name, filters)


def test_metric_key_is_the_inverse_in_given_order() -> None:
    key = "http_req_duration{name:create_vm,method:GET}"
    assert metric_key(*parse_metric_key(key)) == key
    assert metric_key("http_reqs") == "http_reqs"
    assert metric_key("http_reqs", {"status": 500}) == "http_reqs{status:500}"


@pytest.mark.parametrize(("key", "complaint"), [
    ("http_req_duration{name}", "tag filter 'name' must be 'tag:value'"),
    ("http_req_duration{:x}", "tag filter ':x' must be 'tag:value'"),
    ("http_req_duration{name:}", "tag filter 'name:' must be 'tag:value'"),
    ("http_req_duration{name:''}", "tag filter 'name:\'\'' must be 'tag:value'"),
    ("http_req_duration{}", "empty tag filter"),
    ("http_req_duration{a:1,a:2}", "tag 'a' is given twice"),
    ("http_req_duration{name:x", "expected 'name' or 'name{tag:value,...}'"),
    ("http req duration", "expected 'name' or 'name{tag:value,...}'"),
    ("", "expected 'name' or 'name{tag:value,...}'"),
    ("{name:x}", "expected 'name' or 'name{tag:value,...}'"),
])
def test_parse_metric_key_rejects_malformed_keys(key: str, complaint: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_metric_key(key)
    assert f"metric key '{key}'" in str(info.value)
    assert complaint in str(info.value)


def test_parse_metric_key_reports_every_bad_filter() -> None:
    with pytest.raises(ConfigError) as info:
        parse_metric_key("x{a,b:1,c}")
    assert len(info.value.problems) == 2


# -- get-or-create, kinds -------------------------------------------------------------------------


def test_get_or_create_returns_the_same_series() -> None:
    s = MetricStore()
    tags = make_tags(name="a", method="GET")
    t = s.trend("http_req_duration", tags)
    assert s.trend("http_req_duration", tags) is t
    assert s.trend("http_req_duration", (("name", "a"), ("method", "GET"))) is t  # unsorted
    assert s.trend("http_req_duration") is not t
    assert isinstance(s.counter("http_reqs"), Counter)
    assert isinstance(s.rate("http_req_failed"), Rate)
    assert isinstance(s.gauge("vus"), Gauge)
    assert s.names() == ["http_req_duration", "http_req_failed", "http_reqs", "vus"]
    assert len(s.series("http_req_duration")) == 2


def test_a_name_has_one_kind() -> None:
    s = MetricStore()
    s.trend("vm_creation_time")
    with pytest.raises(ConfigError, match="'vm_creation_time' is a trend; it cannot also be "
                                          "used as a counter"):
        s.counter("vm_creation_time")
    with pytest.raises(ConfigError, match="is a trend; it cannot also be used as a rate"):
        s.define("vm_creation_time", "rate")


@pytest.mark.parametrize("name", ["", "a b", "x{y:z}", "a,b", "n" * 129])
def test_bad_metric_names_are_config_errors(name: str) -> None:
    with pytest.raises(ConfigError, match="metric name"):
        MetricStore().trend(name)


def test_bad_kind_and_bad_tags_are_config_errors() -> None:
    s = MetricStore()
    with pytest.raises(ConfigError, match="expected one of trend, counter, rate, gauge"):
        s.define("x", "histogram")
    with pytest.raises(ConfigError, match="make_tags"):
        s.trend("x", ("name",))  # type: ignore[arg-type]


def test_define_makes_a_metric_exist_with_zero_values() -> None:
    s = MetricStore()
    s.define("iterations", "counter")
    s.define("iterations", "counter")  # idempotent
    assert "iterations" in s and "nope" not in s
    assert s.kind("iterations") == "counter"
    assert s.series("iterations") == {}
    agg = s.aggregate("iterations")
    assert isinstance(agg, Counter) and agg.empty


def test_unknown_metric_names_the_metrics_that_exist() -> None:
    s = MetricStore()
    s.counter("http_reqs")
    s.trend("http_req_duration")
    for call in (s.kind, s.aggregate, s.series):
        with pytest.raises(KeyError) as info:
            call("http_req_durations")
        assert info.value.args[0] == ("metric 'http_req_durations' does not exist; metrics "
                                      "that do: http_req_duration, http_reqs")


def test_gauge_combine_defaults_and_conflicts() -> None:
    s = MetricStore()
    assert s.gauge("vus").combine == "sum"
    assert s.gauge("vus_max").combine == "sum"
    assert s.gauge("queue_depth").combine == "max"
    assert s.gauge("vus", combine="sum").combine == "sum"
    with pytest.raises(ConfigError, match="gauge 'queue_depth' combines with 'max'"):
        s.gauge("queue_depth", combine="sum")
    with pytest.raises(ConfigError, match="only gauges take combine"):
        s.define("x", "trend", combine="sum")


def test_merging_a_later_piece_of_the_same_process_takes_its_vu_level() -> None:
    # A second cut at a stage's end: 8 VUs before the cut, 8 then 6 after. Shards' VUs add up
    # (merge); the pieces of one VU pool follow each other (merge later=True), never 16.
    first, second = MetricStore(), MetricStore()
    first.gauge("vus").set(8)
    first.gauge("vus_max").set(8)
    first.counter("iterations").add(3)
    second.gauge("vus").set(8)
    second.gauge("vus").set(6)
    second.gauge("vus_max").set(8)
    second.counter("iterations").add(2)
    second.gauge("queue").set(1)
    window = MetricStore()
    for piece in (first.roll(), second.roll()):
        window.merge(piece, later=True)
    vus = window.gauge("vus")
    assert (vus.current, vus.min, vus.max) == (6, 6, 8)
    assert window.gauge("vus_max").max == 8
    assert window.counter("iterations").total == 5          # counters still add up
    assert window.gauge("queue").current == 1                # new in the later piece
    shards = MetricStore()
    for piece in (first.roll(), second.roll()):
        shards.merge(piece)
    assert shards.gauge("vus").current == 14                 # shards: levels add up


# -- aggregate ------------------------------------------------------------------------------------


def test_aggregate_merges_matching_series_into_a_copy() -> None:
    s = MetricStore()
    for name, method, ms in (("a", "GET", 10.0), ("a", "POST", 20.0), ("b", "GET", 30.0)):
        s.trend("http_req_duration", make_tags(name=name, method=method)).add(ms)
    everything = s.aggregate("http_req_duration")
    assert isinstance(everything, Trend)
    assert (everything.count, everything.min, everything.max) == (3, 10.0, 30.0)
    a = s.aggregate("http_req_duration", {"name": "a"})
    assert isinstance(a, Trend) and (a.count, a.max) == (2, 20.0)
    one = s.aggregate("http_req_duration", {"name": "a", "method": "GET"})
    assert isinstance(one, Trend) and one.count == 1
    one.add(99.0)  # a copy: the store is untouched
    assert s.aggregate("http_req_duration", {"name": "a", "method": "GET"}).value("count") == 1
    none = s.aggregate("http_req_duration", {"name": "zzz"})
    assert isinstance(none, Trend) and none.empty


def test_aggregate_stringifies_filter_values() -> None:
    s = MetricStore()
    s.counter("http_reqs", make_tags(status=500)).add()
    assert s.aggregate("http_reqs", {"status": 500}).value("count") == 1.0


# -- merging shards -------------------------------------------------------------------------------


def record(store: MetricStore, rng: random.Random, n: int) -> None:
    """A fake run: several tag series of every kind."""
    for _ in range(n):
        name = rng.choice(["list_vms", "create_vm", "get_vm"])
        method = "POST" if name == "create_vm" else "GET"
        status = rng.choice([200, 200, 200, 500])
        tags = make_tags(name=name, method=method, status=status)
        store.trend("http_req_duration", tags).add(rng.lognormvariate(3.0, 0.6))
        store.counter("http_reqs", tags).add()
        store.rate("http_req_failed", tags).add(status >= 400)
        store.counter("data_received").add(rng.randrange(100, 2000))
        store.rate("checks", make_tags(check="status is 200")).add(status == 200)


def test_merge_of_shards_equals_single_store() -> None:
    """xdist: merging 8 shard stores gives the result of one store fed everything."""
    single = MetricStore()
    shards = [MetricStore() for _ in range(8)]
    for k, shard in enumerate(shards):
        record(shard, random.Random(k), 2_000)
        record(single, random.Random(k), 2_000)
        shard.gauge("vus").set(k + 1)          # sum across shards
        shard.gauge("queue_depth").set(10 * k)  # max across shards
    merged = MetricStore()
    for shard in shards:
        merged.merge(shard)

    assert merged.names() == [*single.names(), "queue_depth", "vus"]
    for name in ("http_reqs", "http_req_failed", "checks", "data_received"):
        assert merged.series(name).keys() == single.series(name).keys()
        for tags in single.series(name):
            flt = dict(tags)
            assert merged.aggregate(name, flt).stats(10.0) == single.aggregate(
                name, flt).stats(10.0)
    for flt in ({}, {"name": "create_vm"}, {"status": "500"}, {"name": "get_vm", "status": "200"}):
        m = merged.aggregate("http_req_duration", flt)
        s = single.aggregate("http_req_duration", flt)
        assert isinstance(m, Trend) and isinstance(s, Trend)
        assert (m.count, m.min, m.max) == (s.count, s.min, s.max)
        for q in (0.5, 0.95, 0.99):
            assert m.quantile(q) == pytest.approx(s.quantile(q), rel=0.01)
    assert merged.aggregate("vus").stats() == {"type": "gauge", "value": 36, "min": 36,
                                               "max": 36}
    assert merged.aggregate("queue_depth").stats() == {"type": "gauge", "value": 70, "min": 0,
                                                       "max": 70}


def test_store_merge_is_associative() -> None:
    a, b, c = MetricStore(), MetricStore(), MetricStore()
    for seed, store in enumerate((a, b, c)):
        record(store, random.Random(seed), 500)
        store.gauge("vus").set(seed)
    left, right = both_groupings(a, b, c)
    for name in left.names():
        ls, rs = left.aggregate(name).stats(5.0), right.aggregate(name).stats(5.0)
        assert ls.pop("type") == rs.pop("type")
        assert ls.keys() == rs.keys()
        for key in ls:
            assert ls[key] == pytest.approx(rs[key], rel=0.01), (name, key)


def test_merge_rejects_a_kind_conflict() -> None:
    a, b = MetricStore(), MetricStore()
    a.trend("x")
    b.counter("x")
    with pytest.raises(ConfigError, match="'x' is a trend; it cannot also be used as a counter"):
        a.merge(b)


def test_merge_copies_new_series() -> None:
    a, b = MetricStore(), MetricStore()
    b.counter("http_reqs").add(3)
    a.merge(b)
    b.counter("http_reqs").add(100)
    assert a.counter("http_reqs").total == 3
    a.counter("http_reqs").add()  # the hot-path lookup finds the merged series
    assert a.aggregate("http_reqs").value("count") == 4.0


# -- transport ------------------------------------------------------------------------------------


def test_to_dict_round_trip_is_exact_and_json() -> None:
    s = MetricStore()
    record(s, random.Random(1), 1_000)
    s.gauge("vus").set(4)
    s.define("dropped_iterations", "counter")
    data = s.to_dict()
    restored = MetricStore.from_dict(json.loads(json.dumps(data)))
    assert restored.to_dict() == data
    assert restored.names() == s.names()
    assert restored.gauge("vus").combine == "sum"
    for name in s.names():
        assert restored.aggregate(name).stats(2.0) == s.aggregate(name).stats(2.0)
    restored.counter("http_reqs", make_tags(name="get_vm", method="GET", status=200)).add()
    assert restored.aggregate("http_reqs").value("count") == 1_001


# -- windows --------------------------------------------------------------------------------------


def test_roll_is_independent_and_cumulative_is_unchanged() -> None:
    rolled, plain = MetricStore(), MetricStore()
    windows = []
    for second in range(4):
        record(rolled, random.Random(second), 700)
        record(plain, random.Random(second), 700)
        rolled.gauge("vus").set(second)
        plain.gauge("vus").set(second)
        windows.append(rolled.roll())
    assert rolled.to_dict() == plain.to_dict()

    total = sum(w.aggregate("http_reqs").value("count") for w in windows)
    assert total == plain.aggregate("http_reqs").value("count") == 2_800
    for w in windows:
        t = w.aggregate("http_req_duration")
        assert isinstance(t, Trend) and t.count == 700

    first = windows[0].to_dict()
    record(rolled, random.Random(9), 100)
    rolled.roll()
    assert windows[0].to_dict() == first  # later adds and rolls do not reach an old window


def test_roll_window_has_every_metric_and_new_series() -> None:
    s = MetricStore()
    s.define("iterations", "counter")
    s.roll()
    s.trend("late", make_tags(name="x")).add(5.0)
    window = s.roll()
    assert window.names() == ["iterations", "late"]
    assert window.aggregate("iterations").empty
    assert window.aggregate("late", {"name": "x"}).value("max") == 5.0
