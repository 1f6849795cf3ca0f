"""vu.http against real loopback servers: framing, errors, metrics, transports."""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from pytest_novaload.clients.base import ClientContext
from pytest_novaload.clients.http import HttpClient, Response, validate_http_options
from pytest_novaload.errors import ConfigError
from pytest_novaload.metrics import MetricStore

if TYPE_CHECKING:
    from tests.clients.conftest import LoopbackHTTPServer

Scenario = Callable[[HttpClient], Awaitable[Any]]

# (parser, event loop): httptools on asyncio, the pure-Python parser on uvloop.
FLAVORS = [pytest.param(("auto", "asyncio"), id="httptools-asyncio"),
           pytest.param(("python", "uvloop"), id="pure-uvloop")]


@pytest.fixture(params=FLAVORS)
def flavor(request: pytest.FixtureRequest) -> tuple[str, str]:
    value: tuple[str, str] = request.param
    return value


def run_async(factory: Callable[[], Awaitable[Any]], *, loop: str = "asyncio") -> Any:
    """Run one coroutine to completion on a fresh asyncio or uvloop event loop."""
    async def main() -> Any:
        return await factory()

    if loop == "uvloop":
        import uvloop

        return uvloop.run(main())
    return asyncio.run(main())


def make_client(store: MetricStore, base: str | None, *, token: str | None = None,
                **opts: Any) -> HttpClient:
    env = {}
    if base is not None:
        env["API_URL"] = base
    if token is not None:
        env["API_TOKEN"] = token
    return HttpClient(ClientContext(store=store, vu_id=1, env=env, options={"http": opts}))


def run(store: MetricStore, base: str | None, scenario: Scenario, *,
        flavor: tuple[str, str] = ("auto", "asyncio"), **opts: Any) -> Any:
    """Run ``scenario(client)`` on a fresh loop; closes the client like the runner does."""
    parser, loop = flavor

    async def main() -> Any:
        client = make_client(store, base, parser=parser, **opts)
        try:
            return await asyncio.wait_for(scenario(client), 10)
        finally:
            await client.aclose()

    return run_async(main, loop=loop)


def count(store: MetricStore, metric: str, **tags: str) -> float:
    return store.aggregate(metric, tags).value("count")


def failed(store: MetricStore, **tags: str) -> tuple[int, int]:
    """(failed, ok) request counts from http_req_failed (passes are failed requests)."""
    stats = store.aggregate("http_req_failed", tags).stats(1.0)
    return int(stats["passes"]), int(stats["fails"])


# -- round trips ------------------------------------------------------------------------------

def test_get_and_post_json_round_trip(http_server: LoopbackHTTPServer, metric_store: MetricStore,
                                      flavor: tuple[str, str]) -> None:
    async def scenario(http: HttpClient) -> tuple[Response, Response]:
        got = await http.get("/echo")
        posted = await http.post("/echo", json={"name": "vm-1", "tags": ["a", "é"]})
        return got, posted

    got, posted = run(metric_store, http_server.url, scenario, flavor=flavor)
    assert got.status_code == 200 and got.json()["method"] == "GET"
    body = posted.json()
    assert body["method"] == "POST"
    assert body["headers"]["content-type"] == "application/json"
    assert httpx.Response(200, content=body["body"].encode()).json() == {
        "name": "vm-1", "tags": ["a", "é"]}
    assert http_server.connections == 1  # keep-alive: one connection per VU per host:port


def test_form_and_raw_bodies(http_server: LoopbackHTTPServer, metric_store: MetricStore) -> None:
    async def scenario(http: HttpClient) -> list[dict[str, Any]]:
        form = await http.post("/echo", data={"a": "b c", "n": [1, 2], "t": True})
        raw = await http.put("/echo", content=b"\x00raw", headers={"Content-Type": "x/y"})
        text = await http.patch("/echo", content="héllo")
        empty = await http.post("/echo")
        return [r.json() for r in (form, raw, text, empty)]

    form, raw, text, empty = run(metric_store, http_server.url, scenario)
    assert form["body"] == "a=b+c&n=1&n=2&t=true"
    assert form["headers"]["content-type"] == "application/x-www-form-urlencoded"
    assert raw["method"] == "PUT" and raw["headers"]["content-type"] == "x/y"
    assert raw["headers"]["content-length"] == "4"
    assert text["method"] == "PATCH" and text["body"] == "héllo"
    assert empty["headers"]["content-length"] == "0"


def test_params_are_encoded_and_merged_with_the_query(http_server: LoopbackHTTPServer,
                                                      metric_store: MetricStore) -> None:
    async def scenario(http: HttpClient) -> list[Response]:
        return [await http.get("/echo", params={"q": "a b/c&d", "n": [1, 2], "t": True,
                                                "z": None}),
                await http.get("/echo?limit=10", params={"page": 2}),
                await http.get("/echo", params=[("k", "v")]),
                await http.get("/echo", params="x=1&y=2")]

    a, b, c, d = run(metric_store, http_server.url, scenario)
    assert a.json()["query"] == {"q": ["a b/c&d"], "n": ["1", "2"], "t": ["true"], "z": [""]}
    assert str(a.url).startswith(f"{http_server.url}/echo?q=a+b%2Fc%26d")
    assert b.json()["query"] == {"limit": ["10"], "page": ["2"]}
    assert c.json()["query"] == {"k": ["v"]}
    assert d.json()["query"] == {"x": ["1"], "y": ["2"]}
    assert count(metric_store, "http_reqs", name="/echo") == 4  # the query is not in the name


def test_headers_bearer_token_and_overrides(http_server: LoopbackHTTPServer,
                                            metric_store: MetricStore) -> None:
    async def scenario(http: HttpClient) -> list[dict[str, str]]:
        plain = await http.get("/echo")
        extra = await http.get("/echo", headers={"X-Trace": "t1", "authorization": "Basic x"})
        pairs = await http.get("/echo", headers=[("X-A", "1")])
        return [r.json()["headers"] for r in (plain, extra, pairs)]

    plain, extra, pairs = run(metric_store, http_server.url, scenario, token="s3cret",
                              headers={"X-Tenant": "acme"})
    assert plain["authorization"] == "Bearer s3cret"
    assert plain["x-tenant"] == "acme"
    assert plain["host"] == f"127.0.0.1:{http_server.port}"
    assert plain["user-agent"].startswith("pytest-novaload/")
    assert extra["authorization"] == "Basic x" and extra["x-trace"] == "t1"
    assert extra["x-tenant"] == "acme"
    assert pairs["x-a"] == "1" and pairs["authorization"] == "Bearer s3cret"


def test_token_is_only_sent_to_the_api_origin(http_server: LoopbackHTTPServer,
                                              metric_store: MetricStore) -> None:
    other = f"http://localhost:{http_server.port}"  # same server, another origin

    async def scenario(http: HttpClient) -> dict[str, str]:
        r = await http.get(f"{other}/echo")
        headers: dict[str, str] = r.json()["headers"]
        return headers

    headers = run(metric_store, http_server.url, scenario, token="s3cret")
    assert "authorization" not in headers
    assert headers["host"] == f"localhost:{http_server.port}"


def test_header_injection_is_refused(http_server: LoopbackHTTPServer,
                                     metric_store: MetricStore) -> None:
    async def scenario(http: HttpClient) -> None:
        await http.get("/echo", headers={"X-A": "1\r\nX-Injected: 1"})

    with pytest.raises(ConfigError, match="line break"):
        run(metric_store, http_server.url, scenario)


# -- framing ----------------------------------------------------------------------------------

def test_chunked_response(http_server: LoopbackHTTPServer, metric_store: MetricStore,
                          flavor: tuple[str, str]) -> None:
    async def scenario(http: HttpClient) -> tuple[Response, Response]:
        return await http.get("/chunked"), await http.get("/json")

    chunked, after = run(metric_store, http_server.url, scenario, flavor=flavor)
    assert chunked.content == b"hello chunked world"
    assert chunked.headers["transfer-encoding"] == "chunked"
    assert after.json() == {"ok": True}
    assert http_server.connections == 1


def test_connection_close_then_reconnect(http_server: LoopbackHTTPServer,
                                         metric_store: MetricStore,
                                         flavor: tuple[str, str]) -> None:
    async def scenario(http: HttpClient) -> list[Response]:
        return [await http.get("/close"), await http.get("/json"), await http.get("/json")]

    bye, first, second = run(metric_store, http_server.url, scenario, flavor=flavor)
    assert bye.text == "bye" and first.status_code == second.status_code == 200
    assert http_server.connections == 2  # reconnected once after the close, then kept


def test_server_dropping_an_idle_keepalive_socket_is_invisible(
        http_server: LoopbackHTTPServer, metric_store: MetricStore) -> None:
    async def scenario(http: HttpClient) -> list[Response]:
        first = await http.get("/drop")
        await asyncio.sleep(0.2)  # the server closes the socket meanwhile
        return [first, await http.get("/json")]

    first, second = run(metric_store, http_server.url, scenario)
    assert first.text == "dropped" and second.status_code == 200
    assert failed(metric_store) == (0, 2)


def test_keep_alive_off_sends_connection_close(http_server: LoopbackHTTPServer,
                                               metric_store: MetricStore) -> None:
    async def scenario(http: HttpClient) -> list[Response]:
        return [await http.get("/echo") for _ in range(3)]

    responses = run(metric_store, http_server.url, scenario, keep_alive=False)
    assert all(r.json()["headers"]["connection"] == "close" for r in responses)
    assert http_server.connections == 3


def test_large_body(http_server: LoopbackHTTPServer, metric_store: MetricStore,
                    flavor: tuple[str, str]) -> None:
    size = 3_000_000

    async def scenario(http: HttpClient) -> Response:
        return await http.get("/large", params={"size": size})

    r = run(metric_store, http_server.url, scenario, flavor=flavor)
    assert len(r.content) == size
    assert r.content == bytes(i % 251 for i in range(size))
    assert count(metric_store, "data_received") > size


def test_head_204_304_and_eof_bodies(http_server: LoopbackHTTPServer, metric_store: MetricStore,
                                     flavor: tuple[str, str]) -> None:
    async def scenario(http: HttpClient) -> list[Response]:
        return [await http.head("/large", params={"size": 5000}),
                await http.get("/status/204"),
                await http.get("/status/304"),
                await http.get("/json"),
                await http.get("/eof")]

    head, no_content, not_modified, after, eof = run(metric_store, http_server.url, scenario,
                                                     flavor=flavor)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["content-length"] == "5000"
    assert no_content.status_code == 204 and no_content.content == b""
    assert not_modified.status_code == 304 and not_modified.content == b""
    assert after.json() == {"ok": True}
    assert eof.content == b"until the end"  # no Content-Length: the body ends at close
    assert http_server.connections == 1  # HEAD, 204 and 304 left the connection usable
    assert failed(metric_store) == (0, 5)


def test_body_arriving_late_is_waited_for(http_server: LoopbackHTTPServer,
                                          metric_store: MetricStore) -> None:
    async def scenario(http: HttpClient) -> Response:
        return await http.get("/slowbody")

    r = run(metric_store, http_server.url, scenario)
    assert r.content == b"abcd"
    assert r.elapsed >= datetime.timedelta(milliseconds=250)
    assert metric_store.aggregate("http_req_duration").value("max") >= 250.0


def test_concurrent_requests_of_one_vu_use_separate_connections(
        http_server: LoopbackHTTPServer, metric_store: MetricStore) -> None:
    async def scenario(http: HttpClient) -> list[Response]:
        return list(await asyncio.gather(http.get("/slowbody"), http.get("/json")))

    slow, fast = run(metric_store, http_server.url, scenario)
    assert slow.content == b"abcd" and fast.json() == {"ok": True}
    assert http_server.connections == 2


# -- transport errors --------------------------------------------------------------------------

def test_refused_connection_is_status_0_and_counted(free_port: int,
                                                    metric_store: MetricStore) -> None:
    async def scenario(http: HttpClient) -> Response:
        return await http.get("/vms?x=1")

    r = run(metric_store, f"http://127.0.0.1:{free_port}", scenario)
    assert r.status_code == 0
    assert r.error is not None and r.error.startswith("ConnectError: ")
    assert "refused" in r.error.lower()
    assert r.error_code == 1212
    assert failed(metric_store) == (1, 0)
    assert count(metric_store, "http_reqs", status="0", error="ConnectError", name="/vms",
                 expected_response="false") == 1
    assert count(metric_store, "http_req_duration", error="ConnectError") == 1
    with pytest.raises(httpx.ConnectError, match="refused"):
        r.raise_for_status()
    assert not r.is_success and r.is_error


def test_reset_is_a_read_error(http_server: LoopbackHTTPServer, metric_store: MetricStore,
                               flavor: tuple[str, str]) -> None:
    async def scenario(http: HttpClient) -> tuple[Response, Response]:
        return await http.get("/reset"), await http.get("/json")

    reset, after = run(metric_store, http_server.url, scenario, flavor=flavor)
    assert reset.status_code == 0
    assert reset.error is not None
    assert reset.error.split(":")[0] in ("ReadError", "RemoteProtocolError")
    assert after.status_code == 200  # the next request reconnects
    assert failed(metric_store) == (1, 1)


def test_hanging_server_times_out(http_server: LoopbackHTTPServer,
                                  metric_store: MetricStore) -> None:
    async def scenario(http: HttpClient) -> tuple[Response, Response, Response]:
        return (await http.get("/hang", timeout=0.2), await http.get("/json"),
                await http.get("/hang", name="hang-default"))

    hung, after, default = run(metric_store, http_server.url, scenario, timeout="300ms")
    assert hung.status_code == 0 and hung.error == "ReadTimeout: no response within 0.2s"
    assert hung.error_code == 1050
    assert after.status_code == 200
    assert default.error == "ReadTimeout: no response within 0.3s"  # the client's option
    assert count(metric_store, "http_reqs", error="ReadTimeout") == 2
    with pytest.raises(httpx.ReadTimeout):
        hung.raise_for_status()


def test_not_http_is_a_protocol_error(http_server: LoopbackHTTPServer,
                                      metric_store: MetricStore,
                                      flavor: tuple[str, str]) -> None:
    async def scenario(http: HttpClient) -> Response:
        return await http.get("/garbage")

    r = run(metric_store, http_server.url, scenario, flavor=flavor)
    assert r.status_code == 0
    assert r.error is not None and r.error.startswith("RemoteProtocolError: ")
    assert count(metric_store, "http_reqs", error="RemoteProtocolError") == 1


def test_cancellation_propagates_and_closes_the_connection(
        http_server: LoopbackHTTPServer, metric_store: MetricStore) -> None:
    async def scenario(http: HttpClient) -> Response:
        task = asyncio.create_task(http.get("/hang"))
        for _ in range(100):  # wait until the server has the request
            if http_server.count("/hang"):
                break
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert http.fast_transport.idle == 0  # not kept for reuse
        return await http.get("/json")

    after = run(metric_store, http_server.url, scenario)
    assert after.status_code == 200
    assert http_server.connections == 2
    assert count(metric_store, "http_reqs") == 1  # the cancelled request is not recorded


# -- outcomes and tags -------------------------------------------------------------------------

def test_expected_statuses(http_server: LoopbackHTTPServer, metric_store: MetricStore) -> None:
    async def scenario(http: HttpClient) -> list[Response]:
        return [await http.get("/status/404", expected=404),
                await http.get("/status/404"),
                await http.get("/status/201", expected=range(200, 300)),
                await http.get("/status/500", expected={200, 500}),
                await http.get("/status/200", expected=[201]),
                await http.get("/redirect")]

    responses = run(metric_store, http_server.url, scenario)
    assert [r.status_code for r in responses] == [404, 404, 201, 500, 200, 302]
    assert count(metric_store, "http_reqs", name="/status/404", expected_response="true") == 1
    assert count(metric_store, "http_reqs", name="/status/404", expected_response="false") == 1
    assert failed(metric_store, name="/status/201") == (0, 1)
    assert failed(metric_store, name="/status/500") == (0, 1)
    assert failed(metric_store, name="/status/200") == (1, 0)
    assert failed(metric_store, name="/redirect") == (0, 1)  # 3xx succeeds by default
    assert failed(metric_store) == (2, 4)


def test_bad_expected_is_a_config_error(http_server: LoopbackHTTPServer,
                                        metric_store: MetricStore) -> None:
    async def scenario(http: HttpClient) -> None:
        await http.get("/json", expected="200")  # type: ignore[arg-type]

    with pytest.raises(ConfigError, match=r"expected='200'.*range"):
        run(metric_store, http_server.url, scenario)


def test_name_tag_default_and_override(http_server: LoopbackHTTPServer,
                                       metric_store: MetricStore) -> None:
    async def scenario(http: HttpClient) -> None:
        await http.get("/echo/1?verbose=1")
        await http.get("/echo/2", name="echo_by_id")
        await http.get("/echo/3", name="echo_by_id")
        await http.delete("/echo/4", name="echo_by_id")

    run(metric_store, http_server.url + "/", scenario)
    assert count(metric_store, "http_reqs", name="/echo/1", method="GET", status="200") == 1
    assert count(metric_store, "http_reqs", name="echo_by_id", method="GET") == 2
    assert count(metric_store, "http_reqs", name="echo_by_id", method="DELETE") == 1
    tags = set(metric_store.series("http_req_duration"))
    assert (("expected_response", "true"), ("method", "GET"), ("name", "/echo/1"),
            ("status", "200")) in tags


def test_base_url_path_is_a_prefix(http_server: LoopbackHTTPServer,
                                   metric_store: MetricStore) -> None:
    async def scenario(http: HttpClient) -> list[Response]:
        return [await http.get("/v1"), await http.get("v2")]

    a, b = run(metric_store, http_server.url + "/echo", scenario)
    assert a.json()["path"] == "/echo/v1" and b.json()["path"] == "/echo/v2"
    assert count(metric_store, "http_reqs", name="/echo/v1") == 1


def test_metrics_match_requests_served(http_server: LoopbackHTTPServer,
                                       metric_store: MetricStore) -> None:
    async def vu(http: HttpClient) -> None:
        for i in range(30):
            await http.get("/json")
            await http.post("/echo", json={"i": i})
            await http.get("/status/404")

    async def main() -> None:
        clients = [make_client(metric_store, http_server.url) for _ in range(5)]
        await asyncio.gather(*(vu(c) for c in clients))
        for c in clients:
            await c.aclose()

    run_async(main)
    assert http_server.served == 450
    assert http_server.connections == 5
    assert count(metric_store, "http_reqs") == http_server.served
    assert count(metric_store, "http_req_duration") == http_server.served
    assert count(metric_store, "http_reqs", method="POST", status="200") == 150
    assert failed(metric_store) == (150, 300)
    sent = count(metric_store, "data_sent")
    assert sent > 450 * len(b"GET /json HTTP/1.1\r\n")
    assert count(metric_store, "data_received") > 450 * len(b"HTTP/1.1 200 OK\r\n")


def test_http_metrics_exist_with_zero_values_once_the_client_is_made(
        metric_store: MetricStore) -> None:
    make_client(metric_store, "http://127.0.0.1:9")
    for name, kind in (("http_req_duration", "trend"), ("http_reqs", "counter"),
                       ("http_req_failed", "rate"), ("data_sent", "counter"),
                       ("data_received", "counter")):
        assert name in metric_store and metric_store.kind(name) == kind
    assert count(metric_store, "http_reqs") == 0


# -- the response object ---------------------------------------------------------------------

def test_response_interface(http_server: LoopbackHTTPServer, metric_store: MetricStore) -> None:
    async def scenario(http: HttpClient) -> list[Response]:
        return [await http.get("/echo?a=1"), await http.get("/text-latin1"),
                await http.get("/missing")]

    ok, latin, missing = run(metric_store, http_server.url, scenario)
    assert ok.headers["CONTENT-TYPE"] == "application/json"
    assert ok.headers.get("content-length") == str(len(ok.content))
    assert ok.http_version == "HTTP/1.1" and ok.reason_phrase == "OK"
    assert ok.is_success and not ok.is_error and ok.raise_for_status() is ok
    assert isinstance(ok.elapsed, datetime.timedelta) and ok.elapsed.total_seconds() > 0
    assert ok.url == httpx.URL(f"{http_server.url}/echo?a=1")
    assert ok.request.method == "GET" and ok.error is None and ok.error_code == 0
    assert latin.text == "café" and latin.encoding == "iso-8859-1"
    assert missing.reason_phrase == "Not Found" and missing.is_client_error
    with pytest.raises(httpx.HTTPStatusError, match=r"404 Not Found.*/missing") as info:
        missing.raise_for_status()
    assert info.value.response is missing
    assert repr(missing) == "<Response [404 Not Found]>"


def test_redirects_are_returned_unless_max_redirects(http_server: LoopbackHTTPServer,
                                                     metric_store: MetricStore) -> None:
    async def scenario(http: HttpClient) -> Response:
        return await http.get("/redirect")

    r = run(metric_store, http_server.url, scenario)
    assert r.status_code == 302 and r.headers["location"] == "/echo?from=redirect"
    store = MetricStore()
    followed = run(store, http_server.url, scenario, max_redirects=3)
    assert followed.status_code == 200 and followed.json()["query"] == {"from": ["redirect"]}
    assert count(store, "http_reqs") == 2 and count(store, "http_reqs", name="/echo") == 1


# -- transports -------------------------------------------------------------------------------

def test_transport_routing(metric_store: MetricStore) -> None:
    http = make_client(metric_store, "http://127.0.0.1:8000")
    assert http.transport_for("GET", "/vms") == "fast"
    assert http.transport_for("GET", "http://127.0.0.1:9000/x") == "fast"
    assert http.transport_for("GET", "https://127.0.0.1:8443/x") == "httpx"
    assert make_client(metric_store, "https://127.0.0.1:8443").transport_for("GET", "/x") \
        == "httpx"
    forced = make_client(metric_store, "http://127.0.0.1:8000", transport="httpx")
    assert forced.transport_for("GET", "/vms") == "httpx"


def test_https_goes_through_httpx(free_port: int, metric_store: MetricStore) -> None:
    async def scenario(http: HttpClient) -> Response:
        r = await http.get(f"https://127.0.0.1:{free_port}/secure")
        assert http.httpx_transport.started  # created lazily for the https request
        return r

    r = run(metric_store, "http://127.0.0.1:8000", scenario)
    assert r.status_code == 0 and r.error is not None and r.error.startswith("ConnectError")
    assert count(metric_store, "http_reqs", name="/secure", error="ConnectError") == 1


def test_streamed_content_goes_through_httpx(http_server: LoopbackHTTPServer,
                                             metric_store: MetricStore) -> None:
    async def chunks() -> Any:
        yield b"part1-"
        yield b"part2"

    async def scenario(http: HttpClient) -> Response:
        return await http.post("/echo", content=chunks())

    r = run(metric_store, http_server.url, scenario)
    assert r.status_code == 200 and count(metric_store, "http_reqs", method="POST") == 1


def test_httpx_transport_records_the_same_metrics(http_server: LoopbackHTTPServer,
                                                  free_port: int) -> None:
    async def scenario(http: HttpClient) -> list[Response]:
        return [await http.get("/json"), await http.post("/echo", json={"a": 1}),
                await http.get("/status/404", expected=404),
                await http.get("/status/500"),
                await http.get(f"http://127.0.0.1:{free_port}/down")]

    fast_store, httpx_store = MetricStore(), MetricStore()
    fast = run(fast_store, http_server.url, scenario, token="t")
    slow = run(httpx_store, http_server.url, scenario, token="t", transport="httpx")
    assert [r.status_code for r in fast] == [r.status_code for r in slow] == [200, 200, 404, 500,
                                                                              0]
    assert slow[1].json()["headers"]["authorization"] == "Bearer t"
    assert slow[1].json()["body"] == '{"a":1}'
    assert slow[4].error is not None and slow[4].error.startswith("ConnectError")
    for metric in ("http_req_duration", "http_reqs", "http_req_failed"):
        assert set(fast_store.series(metric)) == set(httpx_store.series(metric))
    assert failed(fast_store) == failed(httpx_store) == (2, 3)
    assert count(httpx_store, "data_sent") > 0 and count(httpx_store, "data_received") > 0


# -- configuration ----------------------------------------------------------------------------

def test_relative_url_without_api_url_is_a_config_error(metric_store: MetricStore) -> None:
    async def scenario(http: HttpClient) -> None:
        await http.get("/vms")

    with pytest.raises(ConfigError, match="API_URL"):
        run(metric_store, None, scenario)


@pytest.mark.parametrize(("opts", "message"), [
    ({"timout": 1}, "HTTP option 'timout': unknown option; did you mean 'timeout'"),
    ({"timeout": -1}, "timeout"),
    ({"timeout": "soon"}, "timeout"),
    ({"transport": "curl"}, "transport"),
    ({"keep_alive": "yes"}, "keep_alive"),
    ({"max_redirects": -1}, "max_redirects"),
    ({"parser": "llhttp"}, "parser"),
])
def test_bad_options_are_config_errors(metric_store: MetricStore, opts: dict[str, Any],
                                       message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        make_client(metric_store, "http://127.0.0.1:8000", **opts)


def test_bad_api_url_and_scheme(metric_store: MetricStore) -> None:
    with pytest.raises(ConfigError, match="API_URL='ftp://x'"):
        make_client(metric_store, "ftp://x")
    http = make_client(metric_store, "http://127.0.0.1:8000")
    with pytest.raises(ConfigError, match="unsupported scheme"):
        http.transport_for("GET", "ws://127.0.0.1/x")


def test_validate_http_options_reports_every_problem_at_once() -> None:
    problems = validate_http_options({
        "timout": 1, "timeout": "zz", "headers": {"X-A": None, "bad name": "v"},
        "transport": "curl", "keep_alive": "yes", "max_redirects": -1, "verify": 3,
        "parser": "llhttp", "http2": "no"})
    text = "\n".join(problems)
    assert len(problems) == 10, text
    assert "'timout': unknown option; did you mean 'timeout'?" in text
    assert "timeout='zz': expected seconds (a number > 0) or a duration such as '500ms'" in text
    for fragment in ("headers['X-A']=None", "name 'bad name'", "transport='curl'",
                     "keep_alive='yes'", "max_redirects=-1", "verify=3", "parser='llhttp'",
                     "http2='no'"):
        assert fragment in text


@pytest.mark.parametrize("opts", [
    {}, {"timeout": 5}, {"timeout": "500ms"}, {"timeout": None},
    {"headers": {"X-Tenant": "a", "X-N": 3}}, {"transport": "httpx", "keep_alive": False},
    {"max_redirects": 5, "verify": False, "parser": "python"},
])
def test_validate_http_options_accepts_valid_dicts(opts: dict[str, Any]) -> None:
    assert validate_http_options(opts) == []


@pytest.mark.parametrize("opts", [{"timeout": "zz"}, {"timeout": 0}, {"timeout": True},
                                  {"headers": ["X-A: b"]}, {"max_redirects": 1.5}])
def test_runtime_raises_what_the_validator_reports(metric_store: MetricStore,
                                                   opts: dict[str, Any]) -> None:
    problems = validate_http_options(opts)
    assert len(problems) == 1
    with pytest.raises(ConfigError) as info:
        make_client(metric_store, "http://127.0.0.1:8000", **opts)
    assert info.value.problems == [f"HTTP option {problems[0]}"]


def test_validate_http_options_without_a_dict_and_unrelated_keys() -> None:
    assert "expected a dict of HTTP options" in validate_http_options([1])[0]  # type: ignore[arg-type]
    (message,) = validate_http_options({"zzzz": 1})
    assert "did you mean" not in message and "expected one of discard_bodies, headers" in message


# -- transport-error examples (ctx.on_error) -------------------------------------------------

def _client_with_errors(store: MetricStore, base: str, errors: list[tuple[str, ...]],
                        **opts: Any) -> HttpClient:
    return HttpClient(ClientContext(store=store, vu_id=1, env={"API_URL": base},
                                    options={"http": opts},
                                    on_error=lambda metric, kind, msg: errors.append(
                                        (kind, msg) if metric == "http_req_failed"
                                        else (metric, kind, msg))))


@pytest.mark.parametrize("transport", ["fast", "httpx"])
def test_transport_errors_reach_on_error_with_method_and_url(
        free_port: int, http_server: LoopbackHTTPServer, metric_store: MetricStore,
        transport: str) -> None:
    errors: list[tuple[str, ...]] = []

    async def main() -> list[Response]:
        http = _client_with_errors(metric_store, f"http://127.0.0.1:{free_port}", errors,
                                   transport=transport)
        try:
            return [await http.get("/x?a=1"), await http.get(f"{http_server.url}/json"),
                    await http.get(f"{http_server.url}/status/500")]
        finally:
            await http.aclose()

    down, ok, server_error = run_async(main)
    assert (down.status_code, ok.status_code, server_error.status_code) == (0, 200, 500)
    # A success reports nothing; an unexpected status is reported as "HTTP <status>".
    assert len(errors) == 2
    assert errors[1] == ("HTTP 500", f"GET {http_server.url}/status/500 -> 500 "
                                     f"{server_error.text}".rstrip())
    kind, message = errors[0]
    assert kind == "ConnectError"
    assert message == f"{down.error} (GET http://127.0.0.1:{free_port}/x?a=1)"
    if transport == "fast":  # httpx says "All connection attempts failed"
        assert "refused" in message.lower()


def test_a_failing_on_error_callback_does_not_break_the_call(free_port: int,
                                                             metric_store: MetricStore) -> None:
    def broken(metric: str, kind: str, message: str) -> None:
        raise RuntimeError("callback bug")

    async def main() -> Response:
        http = HttpClient(ClientContext(store=metric_store, vu_id=1, on_error=broken))
        try:
            return await http.get(f"http://127.0.0.1:{free_port}/x")
        finally:
            await http.aclose()

    r = run_async(main)
    assert r.status_code == 0 and r.error is not None and r.error.startswith("ConnectError")
    assert count(metric_store, "http_reqs", error="ConnectError") == 1


# -- httpx calling convention: follow_redirects, cookies ------------------------------------

@pytest.mark.parametrize("transport", ["fast", "httpx"])
def test_follow_redirects_per_call(http_server: LoopbackHTTPServer, transport: str) -> None:
    async def scenario(http: HttpClient) -> list[Response]:
        return [await http.get("/redirect", follow_redirects=True),
                await http.get("/redirect"),
                await http.request("GET", "/redirect", follow_redirects=False)]

    store = MetricStore()
    followed, default, refused = run(store, http_server.url, scenario, transport=transport)
    assert followed.status_code == 200 and followed.json()["query"] == {"from": ["redirect"]}
    assert default.status_code == refused.status_code == 302  # max_redirects defaults to 0
    assert count(store, "http_reqs", name="/redirect") == 3
    assert count(store, "http_reqs", name="/echo") == 1  # each hop is recorded

    store = MetricStore()
    kept = run(store, http_server.url, lambda http: http.get("/redirect",
                                                            follow_redirects=False),
               max_redirects=3)
    assert kept.status_code == 302 and count(store, "http_reqs") == 1


def test_follow_redirects_must_be_a_bool(http_server: LoopbackHTTPServer,
                                         metric_store: MetricStore) -> None:
    with pytest.raises(ConfigError, match="follow_redirects='yes'"):
        run(metric_store, http_server.url,
            lambda http: http.get("/redirect", follow_redirects="yes"))  # type: ignore[arg-type]


@pytest.mark.parametrize("transport", ["fast", "httpx"])
def test_cookies_are_sent_as_one_cookie_header(http_server: LoopbackHTTPServer,
                                               metric_store: MetricStore,
                                               transport: str) -> None:
    async def scenario(http: HttpClient) -> list[Response]:
        return [await http.get("/echo", cookies={"session": "abc", "n": "1"}),
                await http.post("/echo", json={}, cookies={"a": "b"},
                                headers={"Cookie": "first=1", "X-K": "v"}),
                await http.get("/echo")]

    plain, joined, none = run(metric_store, http_server.url, scenario, transport=transport)
    assert plain.json()["headers"]["cookie"] == "session=abc; n=1"
    assert joined.json()["headers"]["cookie"] == "first=1; a=b"
    assert joined.json()["headers"]["x-k"] == "v"
    assert "cookie" not in none.json()["headers"]  # no jar: nothing is remembered
