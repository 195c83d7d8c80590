"""The address check of shared/outbound.py: every refused range in every spelling a URL can
carry it in, names that resolve inside, a resolver whose answer changes between the check and
the connect, and one that hangs. Requests go to real servers on 127.0.0.1 (the local
relaxation)."""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from werkzeug.test import EnvironBuilder

from shared import outbound, resolver, routes
from shared.web import dispatch
from tests.apikit import body
from tools.fixtures.processes import free_port

# One address of every refused IPv4 range, and the reason the check gives.
REFUSED_V4 = [
    ("0.0.0.0", "unspecified"),  # noqa: S104 (an address refused, not bound)
    ("0.1.2.3", "unspecified"),
    ("10.0.0.1", "private"),
    ("10.255.255.254", "private"),
    ("100.64.0.1", "carrier-grade NAT"),
    ("100.127.255.254", "carrier-grade NAT"),
    ("127.0.0.1", "loopback"),
    ("127.255.0.9", "loopback"),
    ("169.254.169.254", "link-local"),  # the metadata server
    ("169.254.0.1", "link-local"),
    ("172.16.0.1", "private"),
    ("172.31.255.254", "private"),
    ("192.168.1.1", "private"),
    ("192.0.0.8", "reserved"),
    ("192.0.2.1", "reserved"),
    ("192.88.99.1", "reserved"),
    ("198.18.0.1", "reserved"),
    ("198.51.100.7", "reserved"),
    ("203.0.113.9", "reserved"),
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "reserved"),
]

REFUSED_V6 = [
    ("::", "unspecified"),
    ("0:0:0:0:0:0:0:0", "unspecified"),
    ("::1", "loopback"),
    ("0000:0000:0000:0000:0000:0000:0000:0001", "loopback"),
    ("fc00::1", "private"),
    ("fd20:ce::254", "private"),  # the metadata server's IPv6 address
    ("fec0::1", "private"),
    ("64:ff9b:1::a00:1", "private"),
    ("fe80::1", "link-local"),
    ("febf:ffff::1", "link-local"),
    ("ff02::1", "multicast"),
    ("ff0e::1", "multicast"),
    ("::7f00:1", "reserved"),  # IPv4-compatible (deprecated)
    ("100::1", "reserved"),
    ("2001::1", "reserved"),  # Teredo
    ("2001:db8::1", "reserved"),
    ("3fff::1", "reserved"),
    ("4000::1", "reserved"),  # outside global unicast
]


def spellings(address: str) -> dict[str, str]:
    """The host parts a URL may carry one IPv4 address in."""
    value = int(ipaddress.IPv4Address(address))
    octets = [int(o) for o in address.split(".")]
    high, low = value >> 16, value & 0xFFFF
    return {
        "dotted": address,
        "decimal": str(value),
        "octal": ".".join(f"0{o:o}" for o in octets),
        "hex": ".".join(f"0x{o:x}" for o in octets),
        "hex-whole": f"0x{value:08x}",
        "short": f"{octets[0]}.{value & 0xFFFFFF}",
        "mapped": f"[::ffff:{address}]",
        "mapped-hex": f"[::ffff:{high:x}:{low:x}]",
        "mapped-long": f"[0:0:0:0:0:ffff:{high:x}:{low:x}]",
        "nat64": f"[64:ff9b::{high:x}:{low:x}]",
        "6to4": f"[2002:{high:x}:{low:x}::1]",
    }


def refused_reason(url: str, *, allow_loopback_http: bool = False, resolver=None) -> str:
    with pytest.raises(outbound.Refused) as caught:
        outbound.check(url, allow_loopback_http=allow_loopback_http, resolver=resolver or no_dns)
    assert caught.value.http_status == 400
    return caught.value.reason


def no_dns(*args, **kwargs):
    raise AssertionError("a literal address needs no DNS")


def answers(*addresses: str):
    """A resolver that answers `addresses` (and counts its calls)."""

    def resolve(host, port, **kwargs):
        resolve.calls += 1
        family = {4: socket.AF_INET, 6: socket.AF_INET6}
        return [
            (family[ipaddress.ip_address(a).version], socket.SOCK_STREAM, 6, "", (a, port))
            for a in addresses
        ]

    resolve.calls = 0
    return resolve


@pytest.mark.parametrize(("address", "reason"), REFUSED_V4)
def test_every_refused_ipv4_range_in_every_spelling(address: str, reason: str) -> None:
    for form, host in spellings(address).items():
        for port in ("", ":8443"):
            url = f"https://{host}{port}/hooks"
            assert refused_reason(url) == reason, f"{form}: {url}"


@pytest.mark.parametrize(("address", "reason"), REFUSED_V6)
def test_every_refused_ipv6_range(address: str, reason: str) -> None:
    assert refused_reason(f"https://[{address}]/hooks") == reason


@pytest.mark.parametrize(
    "url",
    [
        "https://8.8.8.8/hooks",
        "https://134744072:443/hooks",  # 8.8.8.8 in decimal
        "https://[::ffff:8.8.8.8]/hooks",
        "https://[2606:4700:4700::1111]:8443/x?y=1",
    ],
)
def test_public_addresses_pass(url: str) -> None:
    outbound.check(url, allow_loopback_http=False, resolver=no_dns)


@pytest.mark.parametrize(("address", "reason"), REFUSED_V4[::3] + REFUSED_V6[::3])
def test_a_name_is_refused_when_any_of_its_addresses_is(address: str, reason: str) -> None:
    resolver = answers("93.184.215.14", address)
    assert refused_reason("https://hooks.example.com/x", resolver=resolver) == reason


def test_a_name_that_resolves_outside_passes_and_one_that_does_not_resolve_is_refused() -> None:
    outbound.check(
        "https://hooks.example.com/x", allow_loopback_http=False, resolver=answers("8.8.4.4")
    )

    def unknown(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    assert refused_reason("https://nowhere.invalid/x", resolver=unknown) == "unresolvable"


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://8.8.8.8/hooks", "scheme"),
        ("ftp://8.8.8.8/hooks", "scheme"),
        ("//8.8.8.8/hooks", "scheme"),
        ("https:///hooks", "scheme"),
        ("https://8.8.8.8:8080/hooks", "port"),
        ("https://8.8.8.8:80/hooks", "port"),
        ("https://user:pw@8.8.8.8/hooks", "credentials"),
        ("https://evil.com@127.0.0.1/hooks", "credentials"),
        ("https://1.2.3.4.5/hooks", "malformed"),
        ("https://example.123/hooks", "malformed"),
        ("https://[fe80::1%25eth0]/hooks", "malformed"),
        ("https://hooks.exämple.com/x", "malformed"),
        ("https://8.8.8.8:99999/hooks", "malformed"),
    ],
)
def test_scheme_port_and_syntax(url: str, reason: str) -> None:
    assert refused_reason(url) == reason


def test_the_local_relaxation_admits_loopback_receivers_only() -> None:
    for url in ("http://127.0.0.1:9999/h", "http://[::1]:1/h", "https://127.0.0.1:4443/h"):
        refused_reason(url)
        outbound.check(url, allow_loopback_http=True, resolver=no_dns)
    outbound.check("http://localhost:7000/h", allow_loopback_http=True, resolver=answers("::1"))
    assert refused_reason("http://10.0.0.1:9999/h", allow_loopback_http=True) == "scheme"
    assert refused_reason("https://10.0.0.1/h", allow_loopback_http=True) == "private"
    assert refused_reason("http://8.8.8.8/h", allow_loopback_http=True) == "scheme"
    both = answers("10.1.2.3", "127.0.0.1")
    assert refused_reason("https://mixed.example/h", allow_loopback_http=True, resolver=both) == (
        "private"
    )


def test_the_connection_goes_to_the_address_that_was_checked() -> None:
    # GIVEN a name whose first answer is public and whose every later answer is loopback
    calls: list[str] = []

    def rebinding(host, port, **kwargs):
        calls.append(host)
        address = "93.184.215.14" if len(calls) == 1 else "127.0.0.1"
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "", (address, port))]

    connected: list[tuple[str, int]] = []

    def connect(address, timeout=None, *args):
        connected.append(address)
        raise ConnectionRefusedError("no route in this test")

    # WHEN one request is made
    answer = outbound.post(
        "https://hooks.example.com/x",
        b"{}",
        {},
        timeout=2,
        allow_loopback_http=False,
        resolver=rebinding,
        connect=connect,
    )
    # THEN the name was resolved once, and the socket went to that checked address, never to
    # the one a second lookup would have given
    assert calls == ["hooks.example.com"]
    assert connected == [("93.184.215.14", 443)]
    assert answer.status is None and not answer.refused


def test_a_check_that_fails_at_delivery_connects_nowhere() -> None:
    connected: list[object] = []
    answer = outbound.post(
        "https://hooks.example.com/x",
        b"{}",
        {},
        timeout=2,
        allow_loopback_http=False,
        resolver=answers("169.254.169.254"),
        connect=lambda *a, **k: connected.append(a),  # type: ignore[arg-type,return-value]
    )
    assert connected == [] and answer.refused and "link-local" in (answer.error or "")


class Receiver:
    """A loopback HTTP server answering each POST with the next of `statuses` (or hanging)."""

    def __init__(self, statuses: list[int | str]) -> None:
        self.statuses = statuses
        self.requests: list[dict[str, str]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                receiver.requests.append({**self.headers, "body": self.rfile.read(length)})
                status = receiver.statuses.pop(0)
                if status == "hang":
                    time.sleep(3)
                    return
                if status == "drip":  # header lines, slowly, until the client hangs up
                    with contextlib.suppress(OSError):
                        self.wfile.write(b"HTTP/1.1 200 OK\r\n")
                        for _ in range(30):
                            self.wfile.write(b"X-Slow: 1\r\n")
                            self.wfile.flush()
                            time.sleep(0.1)
                    return
                self.send_response(int(status))
                if int(status) == 302:
                    self.send_header("Location", "http://127.0.0.1:1/elsewhere")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hooks?token=t"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def post(self, timeout: float = 2) -> outbound.Answer:
        return outbound.post(
            self.url, b'{"a": 1}', {"X-Test": "yes"}, timeout=timeout, allow_loopback_http=True
        )

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver([])
    yield server
    server.close()


def test_one_post_with_its_body_headers_and_status(receiver: Receiver) -> None:
    receiver.statuses += [204, 500, 302]
    assert receiver.post().status == 204
    assert receiver.post().status == 500
    assert receiver.post().status == 302, "a redirect is an answer, not followed"
    assert len(receiver.requests) == 3
    first = receiver.requests[0]
    assert first["body"] == b'{"a": 1}' and first["X-Test"] == "yes"
    assert first["Host"] == receiver.url.split("/")[2]


def test_a_receiver_that_never_answers_times_out(receiver: Receiver) -> None:
    receiver.statuses += ["hang"]
    started = time.monotonic()
    answer = receiver.post(timeout=0.5)
    assert answer.status is None and answer.error == "timeout" and not answer.refused
    assert time.monotonic() - started < 1.5


def test_the_timeout_bounds_the_whole_request(receiver: Receiver) -> None:
    receiver.statuses += ["drip"]  # each header line well within a socket timeout
    started = time.monotonic()
    answer = receiver.post(timeout=0.5)
    assert answer.error == "timeout"
    assert time.monotonic() - started < 1.5


def test_nothing_listening_is_a_connection_error() -> None:
    answer = outbound.post(
        f"http://127.0.0.1:{free_port()}/", b"{}", {}, timeout=1, allow_loopback_http=True
    )
    assert answer.status is None and "ConnectionRefused" in (answer.error or "")
    assert not answer.refused


class Hanging:
    """A resolver that hangs for `host` (until the test ends) and counts those lookups; any
    other name goes to `fallback`."""

    def __init__(self, host: str, fallback=None) -> None:
        self.host = host
        self.fallback = fallback
        self.calls = 0
        self.release = threading.Event()

    def __call__(self, host, port, *args, **kwargs):
        if host != self.host:
            return self.fallback(host, port, *args, **kwargs)
        self.calls += 1
        self.release.wait(30)
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")


@pytest.fixture
def hanging() -> Iterator[Hanging]:
    stub = Hanging("hangs.example.com")
    yield stub
    stub.release.set()


def test_a_resolver_that_hangs_is_a_503_within_the_lookup_deadline(
    hanging: Hanging, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(resolver, "LOOKUP_SECONDS", 0.3)
    started = time.monotonic()
    with pytest.raises(resolver.LookupTimeout) as caught:
        outbound.check("https://hangs.example.com/h", allow_loopback_http=False, resolver=hanging)
    assert time.monotonic() - started < 1
    assert caught.value.http_status == 503 and caught.value.retryable
    assert caught.value.code == "dns_timeout" and "hangs.example.com" in caught.value.message


def test_hung_lookups_hold_a_bounded_number_of_threads(
    hanging: Hanging, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN room for two lookups at once, and a resolver that hangs
    monkeypatch.setattr(resolver, "LOOKUP_SECONDS", 0.2)
    monkeypatch.setattr(resolver, "_slots", threading.BoundedSemaphore(2))
    # WHEN four checks of its name are made
    for _ in range(4):
        with pytest.raises(resolver.LookupTimeout):
            outbound.check(
                "https://hangs.example.com/h", allow_loopback_http=False, resolver=hanging
            )
    # THEN two lookups hang on their threads (one each); the other checks waited for room,
    # and timed out without starting one
    assert hanging.calls == 2
    # AND once the hung lookups end, their room serves the next check
    hanging.release.set()
    outbound.check(
        "https://hooks.example.com/x", allow_loopback_http=False, resolver=answers("8.8.4.4")
    )


def test_a_resolver_that_hangs_at_delivery_is_retried_within_the_timeout(hanging: Hanging) -> None:
    started = time.monotonic()
    answer = outbound.post(
        "https://hangs.example.com/h",
        b"{}",
        {},
        timeout=0.5,
        allow_loopback_http=False,
        resolver=hanging,
    )
    assert answer.status is None and not answer.refused and "longer than" in (answer.error or "")
    assert time.monotonic() - started < 1.5


@pytest.mark.usefixtures("no_database", "api_env")
def test_the_api_answers_503_when_the_webhooks_name_service_hangs(
    hanging: Hanging, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the system resolver hangs for the webhook's host (the lookup deadline as deployed)
    hanging.fallback = socket.getaddrinfo
    monkeypatch.setattr(socket, "getaddrinfo", hanging)
    request = EnvironBuilder(
        method="POST",
        path="/v1/generations",
        json={"prompt": "p", "webhook": "https://hangs.example.com/h"},
    ).get_request()
    # WHEN a job names it
    started = time.monotonic()
    response = dispatch.dispatch(routes.router(), request, lambda _: {"id": "u"})
    # THEN the request thread is back within a few seconds with a JSON 503 to retry
    assert time.monotonic() - started < resolver.LOOKUP_SECONDS + 1 <= 5
    assert response.status_code == 503 and response.headers["Retry-After"]
    assert body(response)["error"]["code"] == "dns_timeout"
