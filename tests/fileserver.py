"""A small HTTP file server on 127.0.0.1 for the download tests.

The tests of :mod:`itx.download` and of what is built on it (AHBA donors,
Schaefer atlases, gene-set collections) fetch from a throwaway server that
serves bytes from memory and misbehaves on request: HTTP errors a given
number of times, bodies cut short, stalls, hangs, corrupted bytes, with or
without Range support. Each route counts its requests and keeps their
headers, so a test can check what the client asked for.

Use it as a context manager, in a test module's own fixture::

    @pytest.fixture
    def server():
        with FileServer() as srv:
            yield srv

    def test_resume(server, tmp_path):
        route = server.add("/f", body, truncate=1)
        download(server.url("/f"), tmp_path / "f")
        assert route.hits == 2 and route.range_headers[1] == f"bytes={len(body) // 2}-"

The server speaks HTTP/1.0: it closes the connection after each response, so
a body shorter than its Content-Length is a truncated transfer.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

__all__ = ["FileServer", "Request", "Route"]

# what a route does with one request (see Route)
ACTIONS = ("ok", "truncate", "corrupt", "stall", "hang")


@dataclass(frozen=True)
class Request:
    """One request a route received.

    Attributes
    ----------
    path : str
        The request path, query included.
    headers : dict of str to str
        The request headers as sent.
    """

    path: str
    headers: dict

    @property
    def range(self) -> str | None:
        """The ``Range`` header, or None."""
        return self.headers.get("Range")

    @property
    def if_range(self) -> str | None:
        """The ``If-Range`` header, or None."""
        return self.headers.get("If-Range")


class Route:
    """The bytes served at one path and how the server behaves there.

    Each request gets an action: the first ``fail`` requests an HTTP
    ``fail_status``, the next ``truncate`` a truncated body, then the entries
    of ``plan`` one per request, then ``then`` for every later request.

    Parameters
    ----------
    body : bytes
        What the path serves; may be replaced between requests.
    fail : int, optional
        How many requests (the first ones) get HTTP ``fail_status``.
    fail_status : int, optional
        The status of those failures, 503 by default.
    truncate : int, optional
        How many requests after the failures get only the first half of the
        body (with the Content-Length of all of it).
    plan : sequence of str or int, optional
        The actions of the requests after those, one each: ``"ok"`` (the
        body), ``"truncate"`` (the first half of it), ``"corrupt"`` (all of it,
        64 bytes in the middle inverted), ``"stall"`` (all of it, after
        ``stall_seconds``), ``"hang"`` (the first half, then nothing for
        ``hang_seconds`` or until the server stops) or an HTTP status code
        (an error response).
    then : str or int, optional
        The action of every request after those, ``"ok"`` by default; e.g.
        404 for a route that is never found, ``"truncate"`` for a body that
        is always cut short.
    ranges : bool, optional
        Honour ``Range: bytes=N-`` with a 206 response (and announce
        ``Accept-Ranges``); if False the whole body is sent with a 200.
    etag : str or None, optional
        The ``ETag`` header of the responses, ``'"v1"'`` by default; None
        sends none (the client then cannot send ``If-Range``).
    delay : float, optional
        Seconds to wait, after the headers, before each body.
    stall_seconds, hang_seconds : float, optional
        How long ``"stall"`` and ``"hang"`` wait.

    Attributes
    ----------
    requests : list of Request
        The requests received, in order.
    active, max_active : int
        How many requests are being answered now, and the most at once.
    """

    def __init__(self, body: bytes, *, fail: int = 0, fail_status: int = 503,
                 truncate: int = 0, plan=(), then="ok", ranges: bool = True,
                 etag: str | None = '"v1"', delay: float = 0.0,
                 stall_seconds: float = 1.0, hang_seconds: float = 20.0):
        self.body = body
        self.plan = [fail_status] * fail + ["truncate"] * truncate + list(plan)
        self.then = then
        for action in [*self.plan, then]:
            if not (isinstance(action, int) or action in ACTIONS):
                raise ValueError(f"unknown action {action!r}: choose one of {ACTIONS} "
                                 "or an HTTP status")
        self.ranges = ranges
        self.etag = etag
        self.delay = delay
        self.stall_seconds = stall_seconds
        self.hang_seconds = hang_seconds
        self.requests: list[Request] = []
        self.active = 0
        self.max_active = 0

    def action(self, n: int):
        """The action of the ``n``-th request (1-based)."""
        return self.plan[n - 1] if n <= len(self.plan) else self.then

    @property
    def hits(self) -> int:
        """How many requests the route received."""
        return len(self.requests)

    @property
    def range_headers(self) -> list:
        """The ``Range`` header of each request (None where absent)."""
        return [r.range for r in self.requests]

    @property
    def if_range_headers(self) -> list:
        """The ``If-Range`` header of each request (None where absent)."""
        return [r.if_range for r in self.requests]

    @property
    def resume_headers(self) -> list:
        """The ``(Range, If-Range)`` headers of each request."""
        return [(r.range, r.if_range) for r in self.requests]


class _Handler(BaseHTTPRequestHandler):
    # HTTP/1.0: the connection closes after each response, so a short body
    # (fewer bytes than Content-Length) is a truncated transfer.
    protocol_version = "HTTP/1.0"

    def log_message(self, *args):  # keep pytest output clean
        pass

    def do_GET(self):
        owner: FileServer = self.server.owner
        with owner.lock:
            owner.requested.append(self.path)
            route = owner.routes.get(self.path)
            if route is not None:
                route.requests.append(Request(self.path, dict(self.headers.items())))
                n = route.hits
                route.active += 1
                route.max_active = max(route.max_active, route.active)
        if route is None:
            self.send_error(404)
            return
        try:
            self._answer(route, route.action(n), owner.stopping)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (or was killed)
        finally:
            with owner.lock:
                route.active -= 1

    def _answer(self, route: Route, action, stopping: threading.Event):
        if isinstance(action, int):
            self.send_error(action)
            return
        body, start, status = route.body, 0, 200
        m = re.fullmatch(r"bytes=(\d+)-", (self.headers.get("Range") or "").strip())
        if m and route.ranges and int(m.group(1)) < len(body):
            start, status = int(m.group(1)), 206
        part = body[start:]
        self.send_response(status)
        self.send_header("Content-Length", str(len(part)))
        if route.etag is not None:
            self.send_header("ETag", route.etag)
        if route.ranges:
            self.send_header("Accept-Ranges", "bytes")
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        self.end_headers()
        stopping.wait(route.delay)
        if action == "stall":
            stopping.wait(route.stall_seconds)  # longer than the client's read timeout
        elif action == "corrupt":
            mid = len(part) // 2
            part = part[:mid] + bytes(b ^ 0xFF for b in part[mid:mid + 64]) + part[mid + 64:]
        elif action in ("truncate", "hang"):
            part = part[: len(part) // 2]
        self.wfile.write(part)
        self.wfile.flush()
        if action == "hang":
            stopping.wait(route.hang_seconds)


class FileServer:
    """Serve byte routes over HTTP on 127.0.0.1, at a free port.

    Start it with ``with FileServer() as server:`` (or :meth:`start` and
    :meth:`close`); requests are answered each in its own thread. A path
    without a route gets a 404.

    Attributes
    ----------
    base : str
        ``http://127.0.0.1:<port>``, set once started.
    routes : dict of str to Route
        The routes by path.
    requested : list of str
        Every path requested, in order, those without a route too.
    lock : threading.Lock
        Held while the handlers update the routes' records.
    """

    def __init__(self):
        self.routes: dict[str, Route] = {}
        self.requested: list[str] = []
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.base = None
        self._httpd = None
        self._thread = None

    def add(self, path: str, body: bytes, **behaviour) -> Route:
        """Serve ``body`` at ``path`` (replacing any route there).

        Parameters
        ----------
        path : str
            The request path, starting with ``/``.
        body : bytes
            The bytes served.
        **behaviour
            The keyword arguments of :class:`Route`.

        Returns
        -------
        Route
            The new route, whose records the test can check.
        """
        if not path.startswith("/"):
            raise ValueError(f"a route path starts with '/': {path!r}")
        route = Route(body, **behaviour)
        with self.lock:
            self.routes[path] = route
        return route

    def url(self, path: str) -> str:
        """The full URL of ``path`` on this server."""
        return self.base + path

    def start(self) -> FileServer:
        """Bind a free port on 127.0.0.1 and serve in a background thread."""
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.owner = self
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        self.base = f"http://127.0.0.1:{self._httpd.server_address[1]}"
        return self

    def close(self) -> None:
        """Stop serving, end pending stalls and hangs, and free the port."""
        self.stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._thread.join(5)
            self._httpd = None

    def __enter__(self) -> FileServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()
