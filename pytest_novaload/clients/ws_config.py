"""Where ``vu.ws`` connects and with which settings: URL resolution and the ``ws=`` options
(checked by `validate_ws_options`, pure) turned into ``websockets.connect`` keywords."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from pytest_novaload.clients._options import seconds, shown, unknown_option
from pytest_novaload.errors import ConfigError

__all__ = ["DEFAULT_OPEN_TIMEOUT", "VUS_PER_SOURCE_ADDR", "WS_OPTIONS", "WS_TRANSPORTS",
           "auto_local_addr",
           "check_compression", "connect_defaults", "default_name", "resolve_ws_url",
           "validate_ws_options"]

#: keys accepted in ``options["ws"]`` (defaults for every connection of the run).
WS_OPTIONS = frozenset({
    "open_timeout", "close_timeout", "ping_interval", "ping_timeout", "max_size", "max_queue",
    "compression", "local_addrs", "transport",
})

#: ``options["ws"]["transport"]``: websockets (the default) or the lean RFC 6455 client of
#: `ws_fast` (no extensions: compression cannot be asked for with it).
WS_TRANSPORTS = ("websockets", "fast")

DEFAULT_OPEN_TIMEOUT = 10.0


def resolve_ws_url(path_or_url: str, env: Mapping[str, str], *, dwcp: bool = False) -> str:
    """Turn what a scenario passed to ``vu.ws`` into a full ws:// or wss:// URL."""
    if "://" in path_or_url:
        scheme = path_or_url.split("://", 1)[0].lower()
        if scheme not in ("ws", "wss"):
            raise ConfigError(f"vu.ws url {shown(path_or_url)}: expected a ws:// or wss:// URL "
                              f"or a path such as '/ws'; use the ws scheme for WebSocket targets")
        return path_or_url
    dwcp_base = env.get("DWCP_WS_URL", "")
    if dwcp:
        if not dwcp_base:
            raise ConfigError("vu.ws(..., dwcp=True): DWCP_WS_URL is not set; set it to the DWCP "
                              "WebSocket endpoint, e.g. ws://localhost:8080/dwcp/v3")
        return _join(dwcp_base, path_or_url)
    if dwcp_base:
        parts = urlsplit(dwcp_base)
        prefix = parts.path.rstrip("/")
        if prefix and (path_or_url == prefix or path_or_url.startswith(prefix + "/")):
            return f"{parts.scheme}://{parts.netloc}{path_or_url}"
    base = env.get("WS_URL", "")
    if not base:
        api = env.get("API_URL", "")
        if api.startswith(("http://", "https://")):
            base = "ws" + api[4:]
        else:
            raise ConfigError(f"vu.ws({shown(path_or_url)}): WS_URL is not set; set WS_URL (e.g. "
                              f"ws://localhost:8080) or pass a full ws:// URL")
    return _join(base, path_or_url)


def _join(base: str, path: str) -> str:
    if not path:
        return base
    return base.rstrip("/") + "/" + path.lstrip("/")


def default_name(url: str) -> str:
    return urlsplit(url).path or "/"


def check_compression(value: object, transport: str = "websockets") -> str | None:
    if value is None:
        return None
    if value == "deflate":
        if transport == "fast":
            raise ConfigError(_FAST_NO_COMPRESSION.format(shown(value)))
        return "deflate"
    raise ConfigError(f"ws compression={shown(value)}: expected None (off, the default) or "
                      "'deflate'")


_FAST_NO_COMPRESSION = ("ws compression={} with transport='fast': the fast transport offers no "
                        "extensions (no permessage-deflate); drop compression or use "
                        "transport='websockets'")


_TIMEOUTS = ("open_timeout", "close_timeout", "ping_interval", "ping_timeout")


def validate_ws_options(opts: Mapping[str, Any]) -> list[str]:
    """Every problem in a ``ws=`` options dict (empty when valid). Pure: no I/O, no connection.

    Checks unknown keys (with a close-match hint); ``open_timeout``/``ping_interval`` (None, or
    a number or duration > 0), ``close_timeout``/``ping_timeout`` (None, or >= 0); ``max_size``
    (None or bytes >= 1); ``max_queue`` (None, a count >= 1, or a (high, low) pair);
    ``compression`` (None or 'deflate', not with transport 'fast'); ``local_addrs`` (a list of
    address strings); ``transport`` ('websockets' or 'fast').
    Messages start with the key: the caller adds its prefix.
    """
    if not isinstance(opts, Mapping):
        return [f"{shown(opts)}: expected a dict of WebSocket options such as "
                f"{{'open_timeout': '5s'}} (accepted keys: {', '.join(sorted(WS_OPTIONS))})"]
    problems = [unknown_option(key, WS_OPTIONS) for key in opts if key not in WS_OPTIONS]
    for key in _TIMEOUTS:
        value = opts.get(key)
        if value is not None and seconds(
                value, allow_zero=key in ("close_timeout", "ping_timeout")) is None:
            least = "> 0" if key in ("open_timeout", "ping_interval") else ">= 0"
            problems.append(f"{key}={shown(value)}: expected seconds ({least}), a duration such as "
                            f"'10s', or None to disable it")
    max_size = opts.get("max_size")
    if max_size is not None and not _count(max_size):
        problems.append(f"max_size={shown(max_size)}: expected the largest message in bytes, a "
                        f"whole number >= 1 (e.g. 2**20), or None for no limit")
    max_queue = opts.get("max_queue")
    if max_queue is not None and not (
            _count(max_queue) or (isinstance(max_queue, tuple) and len(max_queue) == 2
                                  and all(q is None or _count(q) for q in max_queue))):
        problems.append(f"max_queue={shown(max_queue)}: expected a number of messages >= 1, a "
                        f"(high, low) pair of them, or None for no limit")
    compression = opts.get("compression")
    if compression not in (None, "deflate"):
        problems.append(f"compression={shown(compression)}: expected None (off, the default) or "
                        f"'deflate'")
    transport = opts.get("transport", "websockets")
    if transport not in WS_TRANSPORTS:
        problems.append(f"transport={shown(transport)}: expected 'websockets' (the default) or "
                        f"'fast' (the lean client, no compression); fix the value or remove it")
    elif transport == "fast" and compression == "deflate":
        problems.append(_FAST_NO_COMPRESSION.format(shown(compression))[len("ws "):])
    addrs = opts.get("local_addrs")
    if addrs is not None and (isinstance(addrs, str) or not isinstance(addrs, Sequence)
                              or not all(isinstance(a, str) and a for a in addrs)):
        problems.append(f"local_addrs={shown(addrs)}: expected a list of source addresses such as "
                        f"['127.0.0.1', '127.0.0.2']")
    return problems


def _count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def connect_defaults(options: Mapping[str, Any], vu_id: int) -> dict[str, Any]:
    """Keyword arguments for ``websockets.connect`` from ``options["ws"]`` (validated first)."""
    problems = validate_ws_options(options)
    if problems:
        raise ConfigError([f"ws option {p}" for p in problems])
    kw: dict[str, Any] = {
        "compression": options.get("compression"),
        "open_timeout": DEFAULT_OPEN_TIMEOUT,
        "proxy": None,
    }
    for key in _TIMEOUTS:
        if key in options:
            value = options[key]
            kw[key] = None if value is None else seconds(value, allow_zero=True)
    for key in ("max_size", "max_queue"):
        if key in options:
            kw[key] = options[key]
    addrs = options.get("local_addrs")
    if addrs:
        kw["local_addr"] = (addrs[vu_id % len(addrs)], 0)
    return kw


#: VUs (by id, unique across shards) per loopback source address when ``local_addrs`` is not
#: set: one source address has ~28K ephemeral ports per destination, so VUs 1..20000 connect
#: from the kernel's choice as before and each further 20000 from the next 127.0.0.x.
VUS_PER_SOURCE_ADDR = 20_000


def auto_local_addr(url: str, vu_id: int) -> tuple[str, int] | None:
    """The source address for VU ``vu_id`` connecting to a loopback ``url`` (None: the
    kernel chooses), so that 100K connections to one loopback port do not run out of ports."""
    block = (vu_id - 1) // VUS_PER_SOURCE_ADDR
    if block <= 0:
        return None
    host = urlsplit(url).hostname or ""
    if not (host == "localhost" or host.startswith("127.")):
        return None
    return f"127.0.0.{1 + block % 254}", 0
