"""Host names as RECEIPT_ALLOWED_HOSTS lists them and as links are compared to them.

Below the configuration (which refuses a bad entry at start-up) and the receipt downloads
(which check every link and redirect against the list), so neither imports the other.
"""

from __future__ import annotations

import ipaddress

import httpx

HostPort = tuple[str, int | None]
"""An allowed host and port; None: the default port of the link's scheme (443 for https)."""


def parse_allowed_host(entry: str) -> HostPort:
    """One RECEIPT_ALLOWED_HOSTS entry (`host`, `host:port`, `[v6]:port`), normalized; a
    pattern, a URL or a bad port fails at start-up."""
    text = entry.strip()
    if any(c in text for c in "*/@?#\\ %"):
        raise ValueError(
            f"RECEIPT_ALLOWED_HOSTS must list exact host names (with an optional :port), "
            f"got {entry!r}"
        )
    port_text: str | None = None
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise ValueError(f"RECEIPT_ALLOWED_HOSTS: {entry!r} is not a host[:port]")
        port_text = rest[1:] if rest else None
    else:
        host = text
        is_ip = True
        try:
            ipaddress.ip_address(text)  # a bare IPv6 address carries no port
        except ValueError:
            is_ip = False
        if not is_ip and text.count(":") == 1:
            host, port_text = text.split(":")
    if port_text is not None and not (port_text.isdigit() and 0 < int(port_text) < 65536):
        raise ValueError(f"RECEIPT_ALLOWED_HOSTS: {entry!r} has no valid port (1-65535)")
    is_ip = True
    try:
        ipaddress.ip_address(host)
    except ValueError:
        is_ip = False
    if not host or (not is_ip and (":" in host or "[" in host or "]" in host)):
        raise ValueError(
            f"RECEIPT_ALLOWED_HOSTS must list exact host names (with an optional :port), "
            f"got {entry!r}"
        )
    return normalize_host(host), None if port_text is None else int(port_text)


def render_host(entry: HostPort) -> str:
    host, port = entry
    shown = f"[{host}]" if ":" in host else host
    return shown if port is None else f"{shown}:{port}"


def normalize_host(host: str) -> str:
    """The form hosts are compared in: lower case, no trailing dot, IDNA (punycode), IPs compact.

    Both the allow-list and every URL go through it, so `Kvittering.DK.` equals
    `kvittering.dk` and a Unicode name equals its punycode, while `127.1` stays unequal to
    `127.0.0.1` (no IP arithmetic: an address must be listed exactly as it is linked).
    """
    host = host.strip().lower().rstrip(".")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    try:
        return ipaddress.ip_address(host).compressed
    except ValueError:
        pass
    try:
        return httpx.URL(f"https://{host}/").raw_host.decode("ascii").rstrip(".")
    except (httpx.InvalidURL, UnicodeError):
        return host
