"""Requests to URLs that users name (job webhooks), safe from server-side request forgery.

A URL is checked when it is given (`check`: its syntax, scheme and port, and every address its
host is or resolves to) and again before each request (`post`: resolved again, every address
checked again, and the connection made to an address that passed: the connection never
resolves the name itself, so a DNS answer that changes between the check and the connect
cannot send the request inside). TLS still verifies the certificate against the host name, and
the request carries it as `Host` (and SNI).

Refused: loopback, private, link-local (169.254.0.0/16, the metadata server's), carrier-grade
NAT, multicast, reserved and unspecified addresses, in IPv4 and IPv6; IPv4 carried in IPv6
(mapped, NAT64, 6to4) by the IPv4 rules. A numeric host in any spelling the C resolver accepts
(decimal `2130706433`, octal `0177.0.0.1`, hex `0x7f.1`) is the IPv4 address it spells. Only
`https` on ports 443 and 8443, unless `allow_loopback_http` (the local stack's one relaxation)
lets a receiver whose every address is loopback use `http` and any port.

A host is resolved within a deadline (shared/resolver.py): a name service that does not answer
in time is a Transient error (503), never a request thread held for as long as it hangs.
"""

from __future__ import annotations

import contextlib
import functools
import http.client
import ipaddress
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

from shared import resolver as names
from shared.errors import InvalidInput, Transient

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = names.Resolver
Connector = Callable[..., socket.socket]
PORTS = (443, 8443)

_V4 = [
    (ipaddress.ip_network(net), why)
    for net, why in (
        ("0.0.0.0/8", "unspecified"),
        ("10.0.0.0/8", "private"),
        ("100.64.0.0/10", "carrier-grade NAT"),
        ("127.0.0.0/8", "loopback"),
        ("169.254.0.0/16", "link-local"),
        ("172.16.0.0/12", "private"),
        ("192.0.0.0/24", "reserved"),  # IETF protocol assignments
        ("192.0.2.0/24", "reserved"),  # documentation
        ("192.88.99.0/24", "reserved"),  # 6to4 relays
        ("192.168.0.0/16", "private"),
        ("198.18.0.0/15", "reserved"),  # benchmarking
        ("198.51.100.0/24", "reserved"),  # documentation
        ("203.0.113.0/24", "reserved"),  # documentation
        ("224.0.0.0/4", "multicast"),
        ("240.0.0.0/4", "reserved"),  # and the broadcast address
    )
]
_V6 = [
    (ipaddress.ip_network(net), why)
    for net, why in (
        ("::/128", "unspecified"),
        ("::1/128", "loopback"),
        ("64:ff9b:1::/48", "private"),  # local-use NAT64
        ("100::/64", "reserved"),  # discard-only
        ("2001::/23", "reserved"),  # IETF protocol assignments, Teredo among them
        ("2001:db8::/32", "reserved"),  # documentation
        ("3fff::/20", "reserved"),  # documentation
        ("5f00::/16", "reserved"),  # segment routing
        ("fc00::/7", "private"),  # unique local
        ("fe80::/10", "link-local"),
        ("fec0::/10", "private"),  # site-local
        ("ff00::/8", "multicast"),
    )
]
_GLOBAL_UNICAST = ipaddress.ip_network("2000::/3")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")
_HOST = re.compile(r"[a-z0-9.-]+|[0-9a-f:.]+")
_NUMERIC_LABEL = re.compile(r"[0-9]+|0x[0-9a-f]*")


class Refused(InvalidInput):
    """The URL or an address of its host is not one the system sends requests to."""

    code = "webhook_refused"

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message, details={"field": "webhook", "reason": reason})
        self.reason = reason


def refusal(address: IPAddress) -> str | None:
    """Why requests may not go to `address` ("loopback", "private", ...), or None."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            return refusal(embedded)
        found = next((why for net, why in _V6 if address in net), None)
        return found or (None if address in _GLOBAL_UNICAST else "reserved")
    return next((why for net, why in _V4 if address in net), None)


@dataclass(frozen=True)
class Target:
    """A URL taken apart: where to connect and what to ask for."""

    scheme: str
    host: str
    port: int
    path: str  # path and query, as the request line carries them
    literal: IPAddress | None  # the host, when it is an address


def parse(url: str) -> Target:
    """The URL's parts (syntax only, no DNS); Refused when it is not an absolute http(s) URL
    with a plain host."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise Refused(f"not a valid URL: {exc}", "malformed") from exc
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https") or not host:
        raise Refused("the webhook must be an absolute https URL", "scheme")
    if parts.username is not None or parts.password is not None:
        raise Refused("the webhook URL may not carry credentials", "credentials")
    if not _HOST.fullmatch(host):
        raise Refused("the webhook host must be an ASCII name or an address", "malformed")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    default = 443 if parts.scheme == "https" else 80
    return Target(parts.scheme, host, port or default, path, _literal(host))


def _literal(host: str) -> IPAddress | None:
    """The address a host spells: IPv6, or IPv4 in any spelling inet_aton reads; else None."""
    if ":" in host:
        try:
            return ipaddress.IPv6Address(host)
        except ValueError as exc:
            raise Refused("not a valid IPv6 address", "malformed") from exc
    if not _NUMERIC_LABEL.fullmatch(host.rstrip(".").rsplit(".", 1)[-1]):
        return None  # a name: its last label is not a number
    try:
        return ipaddress.IPv4Address(socket.inet_aton(host.rstrip(".")))
    except OSError as exc:
        raise Refused("not a valid IPv4 address", "malformed") from exc


def addresses(
    target: Target,
    allow_loopback_http: bool,
    resolver: Resolver | None = None,
    seconds: float | None = None,
) -> list[str]:
    """Every address of the target's host, each allowed; else Refused (Transient when the
    name service did not answer, or not within `seconds`: shared/resolver.py)."""
    if not allow_loopback_http:
        _scheme_and_port(target)
    found = [target.literal] if target.literal else _resolve(target, resolver, seconds)
    if allow_loopback_http and all(refusal(a) == "loopback" for a in found):
        return [str(a) for a in found]
    _scheme_and_port(target)
    for address in found:
        why = refusal(address)
        if why:
            raise Refused(f"{target.host} is or resolves to a {why} address ({address})", why)
    return [str(a) for a in found]


def _scheme_and_port(target: Target) -> None:
    if target.scheme != "https":
        raise Refused("the webhook must be an https URL", "scheme")
    if target.port not in PORTS:
        raise Refused(f"the webhook port must be one of {PORTS}", "port")


def _resolve(target: Target, resolver: Resolver | None, seconds: float | None) -> list[IPAddress]:
    try:
        answers = names.lookup(target.host, target.port, seconds=seconds, resolver=resolver)
    except socket.gaierror as exc:
        if exc.errno == socket.EAI_AGAIN:
            raise Transient(f"resolving {target.host} failed: {exc}") from exc
        raise Refused(f"{target.host} does not resolve", "unresolvable") from exc
    found = list(dict.fromkeys(ipaddress.ip_address(a[4][0].split("%")[0]) for a in answers))
    if not found:
        raise Refused(f"{target.host} does not resolve", "unresolvable")
    return found


def check(url: str, *, allow_loopback_http: bool, resolver: Resolver | None = None) -> None:
    """The check at creation: Refused (a 400) unless requests may go to `url`; Transient (a
    503) when its host's name service does not answer within the lookup deadline."""
    addresses(parse(url), allow_loopback_http, resolver)


@dataclass(frozen=True)
class Answer:
    """What one POST came to: a status, or an error; `refused` when the check refused it."""

    status: int | None
    error: str | None
    seconds: float
    refused: bool = False


@functools.cache
def _tls() -> ssl.SSLContext:
    """Certificates verified against the system's authorities, the name checked."""
    return ssl.create_default_context()


class _Pinned(http.client.HTTPConnection):
    """A connection to `address` for `host`: the Host header, SNI and the certificate's name are
    the host's; the socket goes to the address that was checked (nothing is resolved here)."""

    def __init__(self, target: Target, address: str, timeout: float, connect: Connector) -> None:
        super().__init__(target.host, target.port, timeout=timeout)
        self.tls = target.scheme == "https"
        self.address = address
        self.open_socket = connect
        self.aborted = False

    def connect(self) -> None:
        sock = self.open_socket((self.address, self.port), self.timeout)
        self.sock = _tls().wrap_socket(sock, server_hostname=self.host) if self.tls else sock

    def abort(self) -> None:
        """Cut the connection from another thread (the deadline passed)."""
        self.aborted = True
        if self.sock is not None:
            with contextlib.suppress(OSError):
                self.sock.shutdown(socket.SHUT_RDWR)


def post(
    url: str,
    body: bytes,
    headers: dict[str, str],
    *,
    timeout: float,
    allow_loopback_http: bool,
    resolver: Resolver | None = None,
    connect: Connector = socket.create_connection,
) -> Answer:
    """One POST to `url`, checked as the module says, within `timeout` seconds in all; redirects
    are not followed. The next checked address is tried only when connecting failed."""
    started = time.monotonic()
    try:
        target = parse(url)
        lookup_seconds = min(names.LOOKUP_SECONDS, timeout)
        checked = addresses(target, allow_loopback_http, resolver, lookup_seconds)
    except Refused as refused:  # a name that stopped resolving is retried, like a lost connection
        permanent = refused.reason != "unresolvable"
        return Answer(None, refused.message, time.monotonic() - started, refused=permanent)
    except Transient as unresolved:
        return Answer(None, unresolved.message, time.monotonic() - started)
    conn, error = _connected(target, checked, started + timeout, connect)
    if conn is None:
        return Answer(None, error, time.monotonic() - started)
    deadline = threading.Timer(timeout - (time.monotonic() - started), conn.abort)
    deadline.start()
    try:
        conn.request("POST", target.path, body=body, headers=headers)
        with conn.getresponse() as response:
            status = response.status
    except (OSError, http.client.HTTPException) as exc:
        return Answer(
            None, "timeout" if conn.aborted else _describe(exc), time.monotonic() - started
        )
    finally:
        deadline.cancel()
        conn.close()
    if conn.aborted:  # cut off mid-answer: what was read is no answer
        return Answer(None, "timeout", time.monotonic() - started)
    return Answer(status, None, time.monotonic() - started)


def _connected(
    target: Target, checked: list[str], deadline: float, connect: Connector
) -> tuple[_Pinned | None, str]:
    """A connection to the first checked address that takes one before `deadline` (a
    monotonic time); nothing is sent yet."""
    error = "no address"
    for address in checked:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None, "timeout"
        conn = _Pinned(target, address, remaining, connect)
        try:
            conn.connect()
            return conn, ""
        except (OSError, ssl.SSLError) as exc:
            conn.close()
            error = _describe(exc)
    return None, error


def _describe(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "timeout"
    return f"{type(exc).__name__}: {exc}"[:300]
