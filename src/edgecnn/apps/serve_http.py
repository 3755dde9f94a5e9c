"""The HTTP side of ``serve``, hardened: bounded threads, read timeouts, JSON errors.

Limits (see :class:`Limits`):

- at most ``max_active`` requests are handled at once (each on its own thread);
- up to ``max_waiting`` more connections (those that find no handling thread free within 50 ms)
  are read (within the same timeouts and size limit) and answered ``503 busy``, so a flood
  costs at most ``max_active + max_waiting`` threads;
- past both, the server accepts nothing more until a thread ends: further connections wait in
  the kernel's listen queue (``max_active + max_waiting`` long) and are answered in turn. A
  connection that finds no thread free within twice ``read_timeout`` is closed unanswered
  (counted in ``dropped``), so nothing queues without bound;
- every read and write on a connection times out after ``read_timeout`` seconds (``408``);
- a body must declare its ``Content-Length`` (``411``), at most ``max_upload`` bytes (``413``).

Every error is a JSON object ``{"error": "what went wrong and what to do"}`` with the status
that fits; an unexpected exception in a handler is a ``500`` and the server goes on.
"""

from __future__ import annotations

import errno
import ipaddress
import json
import socket
import sys
import threading
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, HTTPServer

from ..errors import EdgecnnError


class ServeError(EdgecnnError):
    """The server cannot start (port in use, address not available)."""


class RequestError(Exception):
    """A bad request: ``status`` and a message for the client."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


ACTIVE_GRACE = 0.05  # seconds a connection waits for a handling thread before a 503 one


@dataclass(frozen=True)
class Limits:
    max_active: int = 4  # requests handled at once
    max_waiting: int = 16  # further connections answered 503; beyond: closed at once
    read_timeout: float = 10.0  # seconds per socket read or write
    max_upload: int = 32 << 20  # bytes of one request body


def read_body(headers, rfile, max_upload: int) -> bytes:
    """The request body, exactly ``Content-Length`` bytes, or a RequestError saying why not."""
    if headers.get("Transfer-Encoding"):
        raise RequestError(411, "send the image with a Content-Length header "
                                "(chunked uploads are not accepted)")
    values = headers.get_all("Content-Length") or []
    if not values:
        raise RequestError(411, "missing Content-Length: send the image file's bytes as the body")
    if len(values) > 1:
        raise RequestError(400, "more than one Content-Length header: send exactly one")
    text = values[0].strip()
    if not (text.isascii() and text.isdigit()):
        raise RequestError(400, f"Content-Length {text[:40]!r} is not a non-negative integer")
    n = int(text)
    if n == 0:
        raise RequestError(400, "empty body: send the image file's bytes")
    if n > max_upload:
        raise RequestError(413, f"upload of {n} bytes is more than the limit of "
                                f"{max_upload >> 20} MB: send a smaller image")
    data = rfile.read(n)
    if len(data) < n:
        raise RequestError(400, f"truncated upload: got {len(data)} of {n} bytes; send the "
                                "whole file")
    return data


class JsonHandler(BaseHTTPRequestHandler):
    """A request handler whose every answer, errors included, is JSON (except pages it serves).

    Subclasses define ``routes``: {(method, path): callable(handler) -> (status, obj|bytes, ctype)}.
    """

    routes: dict = {}
    limits = Limits()

    def setup(self):
        self.timeout = self.limits.read_timeout  # StreamRequestHandler applies it to the socket
        super().setup()

    def log_message(self, fmt, *args):  # quiet: one line per request is noise here
        pass

    def send_json(self, status: int, obj) -> None:
        self.send_body(status, json.dumps(obj).encode(), "application/json")

    def send_body(self, status: int, body: bytes, ctype: str) -> None:
        if getattr(self, "request_version", "HTTP/0.9") in ("", "HTTP/0.9"):
            self.request_version = "HTTP/1.0"  # always send a status line and headers
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)
        self.close_connection = True

    def send_error(self, code, message=None, explain=None):
        """The standard library's errors (bad request line, header too long …) as JSON."""
        try:
            phrase = HTTPStatus(code).phrase
        except ValueError:
            phrase = "error"
        self.send_json(code, {"error": message or explain or phrase})

    def handle_one_request(self):
        try:
            self.raw_requestline = self.rfile.readline(65537)
            if not self.raw_requestline:
                self.close_connection = True
                return
            if len(self.raw_requestline) > 65536:
                self.requestline = self.request_version = self.command = ""
                self.send_error(414, "request line too long")
                return
            if not self.parse_request():  # it has sent its error
                return
            self._dispatch()
            self.wfile.flush()
        except TimeoutError:
            self._answer_quietly(408, f"timed out after {self.limits.read_timeout:g} s reading "
                                      "the request: send it at once")
        except (ConnectionError, BrokenPipeError):
            self.close_connection = True

    def _dispatch(self) -> None:
        allowed = sorted(m for m, p in self.routes if p == self._path())
        route = self.routes.get((self.command, self._path()))
        try:
            if self.server.busy():
                if self.command == "POST":
                    read_body(self.headers, self.rfile, self.limits.max_upload)
                raise RequestError(503, "busy: too many requests at once; retry in a moment")
            if route is None and allowed:
                raise RequestError(405, f"{self.command} is not allowed here; use "
                                        f"{' or '.join(allowed)}")
            if route is None:
                raise RequestError(404, f"no such page {self._path()[:80]!r}: GET / or "
                                        "POST /classify")
            status, body, ctype = route(self)
        except RequestError as e:
            status, body, ctype = e.status, {"error": str(e)}, None
        except TimeoutError:
            raise
        except Exception as e:  # a bug must not take the server down: answer 500, go on
            print(f"edgecnn serve: internal error on {self.command} {self._path()[:80]}: "
                  f"{type(e).__name__}: {e}", file=sys.stderr)
            status, body, ctype = 500, {"error": f"internal error ({type(e).__name__}); "
                                                 "please report it"}, None
        if ctype is None:
            self.send_json(status, body)
        else:
            self.send_body(status, body, ctype)

    def _path(self) -> str:
        return self.path.split("?", 1)[0]

    def _answer_quietly(self, status: int, message: str) -> None:
        """Answer a client that may be gone; never raise."""
        self.close_connection = True
        try:
            self.send_json(status, {"error": message})
            self.wfile.flush()
        except OSError:
            pass


class BoundedServer(HTTPServer):
    """An HTTPServer with a thread per request, at most ``max_active + max_waiting`` of them."""

    daemon_threads = True

    def __init__(self, address, handler, limits: Limits):
        self.limits = limits
        # the kernel's accept queue: connections past both limits wait there, bounded
        self.request_queue_size = limits.max_active + limits.max_waiting
        self._slots = threading.Condition()
        self._running = {False: 0, True: 0}  # threads: handling (False), answering 503 (True)
        self._local = threading.local()
        self.dropped = 0  # connections closed unanswered: no thread free in 2 read_timeouts
        super().__init__(address, handler)

    def busy(self) -> bool:
        """Is the current thread answering an overflow connection (with 503)?"""
        return getattr(self._local, "busy", False)

    def _take_slot(self) -> bool | None:
        """False: handle the request; True: answer it 503; None: no thread came free in time."""
        with self._slots:
            # a handling thread that is ending (its client already has the answer and may be
            # back) comes free within milliseconds: wait that long before a 503
            self._slots.wait_for(lambda: self._free() is False, ACTIVE_GRACE)
            if self._slots.wait_for(lambda: self._free() is not None,
                                    2 * self.limits.read_timeout):
                busy = self._free()
                self._running[busy] += 1
                return busy
            return None

    def _free(self) -> bool | None:
        """The kind of thread that may start now (see _take_slot), or None."""
        if self._running[False] < self.limits.max_active:
            return False
        return True if self._running[True] < self.limits.max_waiting else None

    def _give_slot(self, busy: bool) -> None:
        with self._slots:
            self._running[busy] -= 1
            self._slots.notify()

    def process_request(self, request, client_address):
        busy = self._take_slot()
        if busy is None:
            self.dropped += 1
            self.shutdown_request(request)
            return
        t = threading.Thread(target=self._run, args=(request, client_address, busy),
                             daemon=True)
        t.start()

    def _run(self, request, client_address, busy):
        self._local.busy = busy
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)
            self._give_slot(busy)

    def handle_error(self, request, client_address):
        print(f"edgecnn serve: error with a client: {sys.exc_info()[1]!r}", file=sys.stderr)


def bind(host: str, port: int, handler, limits: Limits) -> BoundedServer:
    """The server bound to (host, port), or one ServeError saying what to do."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    cls = type("Server", (BoundedServer,), {"address_family": family})
    try:
        return cls((host, port), handler, limits)
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            raise ServeError(f"port {port} on {host} is in use (another server?): choose "
                             "another with --port, or --port 0 for any free one") from None
        if e.errno == errno.EACCES:
            raise ServeError(f"no permission to bind port {port}: use a port above 1023 "
                             "with --port") from None
        raise ServeError(f"cannot bind {host}:{port} ({e.strerror or e}): check --host "
                         "names an address of this machine") from None
    except socket.gaierror as e:
        raise ServeError(f"cannot resolve --host {host!r} ({e}): give an IP address") from None


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def exposure_warning(host: str) -> str | None:
    """A warning when ``host`` lets other machines connect, else None."""
    if is_loopback(host):
        return None
    return (f"warning: serving on {host}, reachable from other machines; the demo has no "
            "authentication. Use --host 127.0.0.1 to keep it local.")
