"""Change notifications: one LISTEN connection per process, and the waiters it wakes.

The transactions that change a job or a session notify `job:<id>` or `session:<id>` on the
channel `imagegen_changes` (triggers in db/schema_image_generation.sql). A waiting request
subscribes to its key and sleeps on an Event, holding no database connection; one thread per
process owns the one extra connection, LISTENs, and wakes the subscribers of each key it hears.
Whenever that connection (re)starts, every subscriber is woken to read again, so a change made
while nothing listened is seen; waiters also read again every RECHECK_SECONDS, so a lost
notification costs latency, never correctness.

The thread reads the connection's protocol messages itself (pg8000 1.31's buffered stream and
`send_QUERY`, as shared/db.py uses them): an idle connection is pinged every PING_SECONDS, and
one that does not answer the next time is dropped and made again.
"""

from __future__ import annotations

import contextlib
import socket
import struct
import threading
from collections.abc import Callable, Iterator
from typing import Any

from shared import db, log

CHANNEL = "imagegen_changes"
RECHECK_SECONDS = 15.0
PING_SECONDS = 30.0
_RECONNECT_SECONDS = (0.5, 10.0)  # first and longest pause before connecting again


class Subscription:
    """One waiter's interest in one key."""

    def __init__(self, key: str) -> None:
        self.key = key
        self._event = threading.Event()

    def wait(self, timeout: float) -> bool:
        """Sleep until the key is notified (True) or `timeout` passes (False)."""
        fired = self._event.wait(timeout)
        self._event.clear()
        return fired

    def wake(self) -> None:
        self._event.set()


class Listener:
    """The process's LISTEN connection and the subscriptions it serves; started on first use."""

    def __init__(self, connect: Callable[[], Any]) -> None:
        self._connect = connect
        self._lock = threading.Lock()
        self._subscribers: dict[str, set[Subscription]] = {}
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._conn: Any = None
        self.listening = threading.Event()

    @contextlib.contextmanager
    def subscribe(self, key: str) -> Iterator[Subscription]:
        """Be woken when `key` changes, for as long as the block runs."""
        subscription = Subscription(key)
        with self._lock:
            self._subscribers.setdefault(key, set()).add(subscription)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="listen", daemon=True)
                self._thread.start()
        try:
            yield subscription
        finally:
            with self._lock:
                waiting = self._subscribers[key]
                waiting.discard(subscription)
                if not waiting:
                    del self._subscribers[key]

    def waiting(self) -> int:
        """How many subscriptions are open."""
        with self._lock:
            return sum(map(len, self._subscribers.values()))

    def wake(self, key: str | None = None) -> None:
        """Wake the subscribers of `key`, or all of them."""
        with self._lock:
            if key is None:
                targets = [s for subs in self._subscribers.values() for s in subs]
            else:
                targets = list(self._subscribers.get(key, ()))
        for subscription in targets:
            subscription.wake()

    def stop(self) -> None:
        """End the thread and close its connection (tests, and processes that reconfigure)."""
        self._stopping.set()
        conn = self._conn
        if conn is not None:
            with contextlib.suppress(OSError):
                conn._usock.shutdown(socket.SHUT_RDWR)  # the blocked read returns at once
        if self._thread is not None:
            self._thread.join(timeout=5)

    def _run(self) -> None:
        pause = _RECONNECT_SECONDS[0]
        while not self._stopping.is_set():
            try:
                self._conn = self._connect()
                self._conn.execute_simple(f"LISTEN {CHANNEL}")
                self.listening.set()
                self.wake()  # whatever changed before LISTEN took effect is read again
                log.info("listening for changes", action="changes.listening")
                pause = _RECONNECT_SECONDS[0]
                self._read(self._conn)
            except Exception as exc:  # the thread outlives any failure, and says so
                if not self._stopping.is_set():
                    log.warning(f"listen connection lost: {exc!r}", action="changes.lost")
            finally:
                self.listening.clear()
                conn, self._conn = self._conn, None
                if conn is not None:
                    with contextlib.suppress(Exception):
                        conn.close()
            self._stopping.wait(pause)
            pause = min(pause * 2, _RECONNECT_SECONDS[1])

    def _read(self, conn: Any) -> None:
        """Protocol messages until the connection fails: notifications wake their key."""
        conn._usock.settimeout(PING_SECONDS)
        stream = conn._sock
        pinged = False
        while not self._stopping.is_set():
            try:
                header = stream.read(5)
            except TimeoutError:
                if pinged:
                    raise ConnectionError("the listen connection does not answer") from None
                conn.send_QUERY("")  # an empty query: EmptyQueryResponse, ReadyForQuery
                stream.flush()
                pinged = True
                continue
            if len(header) < 5:
                raise ConnectionError("the server closed the listen connection")
            code, length = struct.unpack("!ci", header)
            body = stream.read(length - 4)
            pinged = False
            if code == b"A":  # NotificationResponse: pid, channel, payload
                channel, payload = body[4:].split(b"\x00")[:2]
                if channel.decode() == CHANNEL:
                    self.wake(payload.decode())
            elif code == b"E":
                raise ConnectionError(f"the server ended the listen connection: {body!r}")


_listener: Listener | None = None
_listener_lock = threading.Lock()


def listener() -> Listener:
    """The process's listener, connected over the configured transport on first use."""
    global _listener
    with _listener_lock:
        if _listener is None:
            _listener = Listener(db.connect)
        return _listener


def reset() -> None:
    """Stop the process's listener (tests; the next `listener()` makes a new one)."""
    global _listener
    with _listener_lock:
        if _listener is not None:
            _listener.stop()
        _listener = None
