"""Which upstream base URLs a BYOK credential may name (probes and the LLM gateway call them): public addresses only, unless allowed.

A tenant can point its credential at its own OpenAI-compatible server (vLLM, Azure OpenAI);
without this check that would let it make Tollgate call the metadata service or an internal
host (SSRF). Every address the host resolves to must be public (not private, loopback,
link-local, reserved, multicast or unspecified), unless an operator lists the host in
``LLM_EGRESS_ALLOWED_HOSTS``. Redirects are never followed by the proxy.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from django.conf import settings

from byok.errors import ByokErrorCode
from controlplane.core.errors import TollgateError


def _refuse(url: str, why: str) -> TollgateError:
    return TollgateError(
        ByokErrorCode.BYOK_BASE_URL_FORBIDDEN,
        f"The upstream base URL {url!r} is not allowed: {why}.",
        status=424,
    )


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return not (
        ip.is_private
        or ip.is_loopback
        or ip.is_link_local
        or ip.is_reserved
        or ip.is_multicast
        or ip.is_unspecified
    )


def check_base_url(url: str, *, resolve=socket.getaddrinfo) -> str:
    """Return ``url`` when the gateway may call it, else raise 424 LLM_UPSTREAM_FORBIDDEN."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _refuse(url, "use an http(s) URL with a host")
    if parts.username or parts.password:
        raise _refuse(url, "credentials in the URL are not accepted")
    host = parts.hostname.lower()
    if host in {h.lower() for h in settings.LLM_EGRESS_ALLOWED_HOSTS}:
        return url
    if parts.scheme != "https" and not settings.LLM_EGRESS_ALLOW_HTTP:
        raise _refuse(url, "only https is allowed for a public host")
    try:
        infos = resolve(host, parts.port or (443 if parts.scheme == "https" else 80))
    except (OSError, UnicodeError):
        raise _refuse(url, "the host does not resolve") from None
    addresses = {info[4][0] for info in infos}
    if not addresses or not all(_public(a) for a in addresses):
        raise _refuse(url, "it resolves to a private, loopback or link-local address")
    return url
