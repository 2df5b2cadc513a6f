"""Worker addresses: "HOST:PORT" as llama.cpp's RPC backend takes them (it splits at the first
colon, so IPv6 literals are not accepted), and the loopback test the worker's bind rule uses."""
from __future__ import annotations

import ipaddress
import re

DEFAULT_PORT = 50052
_HOST = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.\-]{0,252})$")


class EndpointError(ValueError):
    """A worker address that cannot be used. str(e) is one line."""


def parse_endpoint(text: str) -> str:
    """'host:port' normalised (whitespace stripped, port checked); a bare host gets the default
    port. Raises EndpointError."""
    from quantdesk.core.text import quoted
    raw = str(text).strip()
    host, sep, port = raw.rpartition(":")
    if not sep:
        host, port = raw, str(DEFAULT_PORT)
    if not host or ":" in host or not _HOST.match(host):
        raise EndpointError(f"{quoted(raw)} is not a worker address (expected HOST:PORT, "
                            f"e.g. 192.168.1.20:{DEFAULT_PORT})")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise EndpointError(f"{quoted(raw)}: the port must be a number from 1 to 65535")
    return f"{host}:{int(port)}"


def parse_endpoints(text_or_list) -> tuple[str, ...]:
    """"a:1,b:2" or a list of addresses -> normalised, duplicates dropped, order kept."""
    items = text_or_list.split(",") if isinstance(text_or_list, str) else list(text_or_list or ())
    out = [parse_endpoint(i) for i in items if str(i).strip()]
    return tuple(dict.fromkeys(out))


def split(endpoint: str) -> tuple[str, int]:
    host, _, port = endpoint.rpartition(":")
    return host, int(port)


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (127.0.0.0/8, ::1, "localhost")."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
