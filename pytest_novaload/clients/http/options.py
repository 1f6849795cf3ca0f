"""The ``http=`` options: checked by `validate_http_options` (pure), read by `HttpOptions`."""

from __future__ import annotations

import importlib.util
import ssl
from collections.abc import Mapping
from typing import Any

from pytest_novaload.clients._options import seconds, shown, unknown_option
from pytest_novaload.errors import ConfigError

__all__ = ["DEFAULT_MAX_BODY", "DEFAULT_TIMEOUT", "MAX_BODY_LIMIT", "OPTIONS", "HttpOptions",
           "parse_timeout", "validate_http_options"]

DEFAULT_TIMEOUT = 60.0  # seconds, k6's default
#: Bytes of one response body kept at most (16 MiB): far above any API response, while 100
#: VUs each reading a runaway body cost 1.6 GB at worst instead of the machine.
DEFAULT_MAX_BODY = 16 * 1024 * 1024
MAX_BODY_LIMIT = 1 << 40  # 1 TiB: max_body_size above this is a mistake, not a limit
OPTIONS = ("timeout", "headers", "transport", "keep_alive", "max_redirects", "verify",
           "http2", "parser", "max_body_size", "discard_bodies")

_TIMEOUT_EXPECTED = ("expected seconds (a number > 0) or a duration such as '500ms' or '30s'; "
                     "fix the value or leave it out for the default")


def validate_http_options(opts: Mapping[str, Any]) -> list[str]:
    """Every problem in an ``http=`` options dict (empty when valid). Pure: no I/O, no client.

    Checks unknown keys (with a close-match hint), ``timeout`` (number or duration > 0),
    ``headers`` (dict of str names to str/number single-line values), ``transport``
    ('fast'|'httpx'), ``keep_alive``/``http2`` (bool; http2 needs h2 installed),
    ``max_redirects`` (int >= 0), ``verify`` (bool, CA bundle path or ssl.SSLContext) and
    ``parser`` ('auto'|'python'), ``max_body_size`` (bytes, int 1..2**40) and
    ``discard_bodies`` (bool). Messages start with the key: the caller adds its prefix.
    """
    if not isinstance(opts, Mapping):
        return [f"{shown(opts)}: expected a dict of HTTP options such as {{'timeout': '10s'}} "
                f"(accepted keys: {', '.join(OPTIONS)})"]
    problems = [unknown_option(key, OPTIONS) for key in opts if key not in OPTIONS]
    timeout = opts.get("timeout")
    if timeout is not None and seconds(timeout) is None:
        problems.append(f"timeout={shown(timeout)}: {_TIMEOUT_EXPECTED}")
    headers = opts.get("headers")
    if headers is not None and not isinstance(headers, Mapping):
        problems.append(f"headers={shown(headers)}: expected a dict of header names to values, "
                        "e.g. {'X-Tenant': 'a'}")
    elif headers:
        for hname, hvalue in headers.items():
            if not isinstance(hname, str) or not hname or any(c in hname for c in ":\r\n "):
                problems.append(f"headers: name {shown(hname)}: expected a non-empty header name "
                                "without spaces, colons or line breaks, e.g. 'X-Tenant'")
            elif isinstance(hvalue, bool) or not isinstance(hvalue, (str, int, float)):
                problems.append(f"headers[{shown(hname)}]={shown(hvalue)}: expected a string (or a "
                                "number); convert it, e.g. str(value)")
            elif isinstance(hvalue, str) and ("\r" in hvalue or "\n" in hvalue):
                problems.append(f"headers[{shown(hname)}]={shown(hvalue)}: contains a line break; "
                                "expected a single-line value, remove it")
    transport = opts.get("transport", "fast")
    if transport not in ("fast", "httpx"):
        problems.append(f"transport={shown(transport)}: expected 'fast' (default) or 'httpx'")
    for key in ("keep_alive", "http2", "discard_bodies"):
        value = opts.get(key, False)
        if not isinstance(value, bool):
            problems.append(f"{key}={shown(value)}: expected True or False")
    if opts.get("http2") is True and importlib.util.find_spec("h2") is None:
        problems.append("http2=True needs the h2 package: pip install 'httpx[http2]', or drop "
                        "the option")
    max_redirects = opts.get("max_redirects", 0)
    if (not isinstance(max_redirects, int) or isinstance(max_redirects, bool)
            or max_redirects < 0):
        problems.append(f"max_redirects={shown(max_redirects)}: expected a whole number >= 0 "
                        "(0, the default, returns redirects without following them)")
    max_body = opts.get("max_body_size", DEFAULT_MAX_BODY)
    if (not isinstance(max_body, int) or isinstance(max_body, bool)
            or not 0 < max_body <= MAX_BODY_LIMIT):
        problems.append(f"max_body_size={shown(max_body)}: expected the bytes of a response "
                        f"body kept at most, a whole number in 1..{MAX_BODY_LIMIT} (default "
                        f"{DEFAULT_MAX_BODY}, 16 MiB), e.g. 64 * 1024 * 1024")
    verify = opts.get("verify", True)
    if not isinstance(verify, (bool, str)) and not isinstance(verify, ssl.SSLContext):
        problems.append(f"verify={shown(verify)}: expected True, False, a CA bundle path or an "
                        "ssl.SSLContext")
    parser = opts.get("parser", "auto")
    if parser not in ("auto", "python"):
        problems.append(f"parser={shown(parser)}: expected 'auto' (httptools when installed) or "
                        "'python'")
    return problems


def parse_timeout(value: object, what: str) -> float:
    """Seconds from a number or a duration; a usage error naming ``what`` otherwise."""
    result = seconds(value)
    if result is None:
        raise ConfigError(f"{what}={shown(value)}: {_TIMEOUT_EXPECTED}")
    return result


class HttpOptions:
    """``options["http"]`` checked by `validate_http_options` (the one rule set) and read."""

    __slots__ = ("discard_bodies", "force_httpx", "headers", "http2", "keep_alive",
                 "max_body", "max_redirects", "pure_parser", "timeout", "verify")

    def __init__(self, opts: Mapping[str, Any]) -> None:
        problems = validate_http_options(opts)
        if problems:
            raise ConfigError([f"HTTP option {p}" for p in problems])
        timeout = opts.get("timeout")
        self.timeout = DEFAULT_TIMEOUT if timeout is None else parse_timeout(timeout, "")
        self.headers: list[tuple[str, str]] = [
            (k, str(v)) for k, v in (opts.get("headers") or {}).items()]
        self.keep_alive: bool = opts.get("keep_alive", True)
        self.max_redirects: int = opts.get("max_redirects", 0)
        self.verify: Any = opts.get("verify", True)
        self.http2: bool = opts.get("http2", False)
        self.pure_parser = opts.get("parser", "auto") == "python"
        self.force_httpx = opts.get("transport", "fast") == "httpx" or self.http2
        self.max_body: int = opts.get("max_body_size", DEFAULT_MAX_BODY)
        self.discard_bodies: bool = opts.get("discard_bodies", False)
