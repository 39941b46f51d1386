"""Who may see the app's internals (`/metrics`, `/health/detailed`): operators, not the public.

A request is an operator's when it comes from this machine (the peer is a loopback address and no proxy
header names anyone else: a proxy on this host forwarding a stranger's request is not "this machine"),
or when it presents `Authorization: Bearer <OPS_TOKEN>` (compared in constant time). Everyone else gets
the same 404 as a path that does not exist: the public is not told there is something to guess at.
"""

from __future__ import annotations

import hmac
import ipaddress
import re

from aiohttp import web
from pydantic import SecretStr

from handlers.web import DEPS_KEY

_FORWARDED_FOR = re.compile(r'for\s*=\s*"?([^;,"]+)', re.IGNORECASE)


def may_see_internals(request: web.Request) -> bool:
    return from_this_machine(request) or presents_ops_token(request, request.app[DEPS_KEY].settings.ops_token)


def from_this_machine(request: web.Request) -> bool:
    if not is_loopback(request.remote):
        return False
    named = [part for value in request.headers.getall("X-Forwarded-For", []) for part in value.split(",")]
    named += request.headers.getall("X-Real-IP", [])
    named += [found for value in request.headers.getall("Forwarded", []) for found in _FORWARDED_FOR.findall(value)]
    return all(is_loopback(address) for address in named)


def presents_ops_token(request: web.Request, token: SecretStr | None) -> bool:
    if token is None:
        return False
    scheme, _, presented = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(presented.strip().encode(), token.get_secret_value().encode())


def is_loopback(address: str | None) -> bool:
    """127.0.0.0/8, ::1 or ::ffff:127.x, written bare, in brackets or with a port; anything else is not."""
    if not address:
        return False
    address = address.strip().strip('"')
    if address.startswith("["):  # [::1] or [::1]:4711
        address = address[1:].partition("]")[0]
    elif address.count(":") == 1:  # 127.0.0.1:4711
        address = address.partition(":")[0]
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    mapped = getattr(ip, "ipv4_mapped", None)
    return ip.is_loopback or (mapped is not None and mapped.is_loopback)


def not_found() -> web.Response:
    return web.json_response({"error": "not_found"}, status=404)
