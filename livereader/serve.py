"""A live view in the browser and a reading service over HTTP: ``livereader --serve [HOST:]PORT`` (``[serve]``).

Endpoints (Starlette, served by uvicorn on a thread of its own while the capture loop runs on the main thread):

- ``GET /`` (and ``/page.js``): the page (``livereader/web/``): the annotated live view and a live list of reads.
  Every text is put in the page as text, never as markup, under a Content-Security-Policy that runs only the page's
  own script.
- ``GET /video.mjpg``: the annotated live view as an MJPEG stream (404 without a live source).
- ``GET /events``: reads as server-sent events, each a JSON line's fields (``frame``, ``source``, then
  :meth:`livereader.results.Code.to_dict`) and the code's ``first_seen``, ``last_seen`` (seconds since the epoch,
  the server's clock) and ``times_seen`` (the times it was read since the service started), with its ``id``
  (``RUN-NUMBER``): the live source's reads (every frame's, whatever ``--once`` and ``--dedupe`` keep of the JSON lines)
  and those of ``POST /read`` (source ``http``). The last :data:`HISTORY` reads come first; ``Last-Event-ID``
  resumes after one.
- ``POST /read``: an encoded image as the body, or a multipart form holding one file; ``?content=any`` for any
  content, ``?errors=1`` for the codes that did not read too. Answers the JSON list of codes that
  :func:`livereader.read` gives for the same image (each :meth:`Code.to_dict`).
- ``GET /healthz``: ``{"status": "ok", ...}``.

Safe to expose (:class:`ServeOptions`): it binds 127.0.0.1 unless told otherwise and then answers only requests
addressed to a loopback name (no web page can reach it by DNS rebinding); any other address needs a token, which
every request for data must then carry (``Authorization: Bearer TOKEN``, or ``?token=TOKEN``, which the page passes
on; compared in constant time; the page's two static files need none). A posted body is read up to ``max_body``
bytes (413 beyond; a multipart file stays in memory) within ``timeout`` seconds (408); an image's size is read
from its header before it is decoded, and one over ``max_pixels`` is refused (413), so a decompression bomb is
never decoded; what is not an image, or does not decode, gets 400 with a one-line reason. ``workers`` images are
decoded and read at once, on worker threads; up to ``queue`` more requests may be received or wait for a turn
(each at most ``timeout`` seconds), and beyond that a request gets 503 at once. Nothing reads or writes the
server's files but the page's own.
"""

from __future__ import annotations

import contextlib
import functools
import hmac
import io
import json
import os
import re
import threading
import time
import warnings
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import numpy as np

import livereader

HISTORY = 1000  # reads kept for /events clients that connect later
TALLIED = 10_000  # codes whose first and last sighting and count are kept (the least recently seen dropped)
LOOPBACK = ("127.0.0.1", "::1", "localhost")
TOKEN_VARIABLE = "LIVEREADER_TOKEN"
_PAGE_FILES = {"/": ("index.html", "text/html; charset=utf-8"), "/page.js": ("page.js", "text/javascript")}
_HEADERS = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store", "Referrer-Policy": "no-referrer",
            "Content-Security-Policy": "default-src 'self'; style-src 'self' 'unsafe-inline'; object-src 'none'; "
                                       "base-uri 'none'; frame-ancestors 'none'"}


class ServeError(Exception):
    """Options a service cannot run with (a one-line message)."""


@dataclass(frozen=True)
class ServeOptions:
    host: str = "127.0.0.1"
    port: int = 8080
    token: str | None = None  # required on every request when set; required to bind beyond loopback
    max_body: int = 20 * 2**20  # bytes of a posted image
    max_pixels: int = 50_000_000  # pixels of a posted image, read from its header before decoding
    workers: int = field(default_factory=lambda: os.cpu_count() or 1)  # images read at once
    queue: int = 32  # requests that may wait beyond those; more get 503
    timeout: float = 30.0  # seconds to send a body, or to wait for a turn to be read

    def checked(self) -> ServeOptions:
        """These options, or ServeError where they would expose the service without a token."""
        if self.host not in LOOPBACK and not self.token:
            raise ServeError(f"serving on {self.host} needs a token: --token or the {TOKEN_VARIABLE} variable")
        if not 0 <= self.port < 65536:
            raise ServeError(f"not a port: {self.port}")
        return self


def address(text: str) -> tuple[str, int]:
    """``[HOST:]PORT`` -> (host, port); host 127.0.0.1 when left out; ServeError for anything else."""
    host, _, port = text.rpartition(":")
    if ":" in host and not (host.startswith("[") and host.endswith("]")):
        raise ServeError(f"not [HOST:]PORT (an IPv6 host in brackets: [::1]:8080): {text}")
    try:
        return (host.strip("[]") or "127.0.0.1"), int(port)
    except ValueError:
        raise ServeError(f"not [HOST:]PORT: {text}") from None


class Live:
    """What the service shows: the newest annotated frame of the live source (JPEG) and the recent reads. Filled
    from the reading threads, read by the server's; every method is thread-safe."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.active = False  # a live source publishes frames
        self.frame: tuple[int, bytes] | None = None  # (its number, JPEG)
        self.reads: deque[tuple[int, dict[str, Any]]] = deque(maxlen=HISTORY)
        self.sequence = 0
        self.run = f"{os.getpid():x}{int(time.time() * 1000):x}"  # this run's prefix of event ids
        self.closing = False  # set when the service stops: the streams end
        # (source, text) -> [first seen, last seen (s since the epoch), times read], the TALLIED latest
        self.tally: dict[tuple[str, str], list[float]] = {}

    def publish(self, annotated: np.ndarray | None, lines: list[dict[str, Any]]) -> None:
        """A frame (None: no picture, as for a posted image) and the JSON lines of its reads; each read's event
        also gets its code's ``first_seen``, ``last_seen`` (seconds since the epoch, this server's clock) and
        ``times_seen`` (the times it was read since the service started: once a frame or posted image, twice where
        two codes of one text were)."""
        jpeg = None
        if annotated is not None:
            import cv2

            jpeg = cv2.imencode(".jpg", annotated, [cv2.IMWRITE_JPEG_QUALITY, 80])[1].tobytes()
        now = round(time.time(), 3)
        with self.lock:
            if jpeg is not None:
                self.active = True
                self.frame = ((self.frame[0] + 1) if self.frame else 1, jpeg)
            for line in lines:
                seen = self.tally.pop((line["source"], line["text"]), None) or [now, now, 0]
                seen[1:] = [now, seen[2] + 1]
                self.tally[(line["source"], line["text"])] = seen  # the newest last: the oldest dropped first
                if len(self.tally) > TALLIED:
                    del self.tally[next(iter(self.tally))]
                self.sequence += 1
                self.reads.append((self.sequence, {**line, "first_seen": seen[0], "last_seen": seen[1],
                                                   "times_seen": int(seen[2])}))

    def frame_after(self, seen: int) -> tuple[int, bytes] | None:
        with self.lock:
            return self.frame if self.frame is not None and self.frame[0] != seen else None

    def reads_after(self, seen: int) -> list[tuple[int, dict[str, Any]]]:
        with self.lock:
            return [(number, line) for number, line in self.reads if number > seen]


class _Token:
    """ASGI middleware: every HTTP request carries the token (a Bearer header or ``?token=``), or gets 401."""

    def __init__(self, app: Any, token: str):
        self.app, self.token = app, token.encode()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        from starlette.datastructures import Headers, QueryParams
        from starlette.responses import PlainTextResponse

        if scope["type"] == "http" and scope["path"] not in _PAGE_FILES:  # the page holds no data; it asks with ?token=
            header = Headers(scope=scope).get("authorization", "")
            given = header[7:] if header.lower().startswith("bearer ") else QueryParams(scope["query_string"]).get(
                "token", "")
            if not hmac.compare_digest(given.encode(), self.token):
                await PlainTextResponse("a valid token is needed (Authorization: Bearer TOKEN or ?token=TOKEN)\n",
                                        401, headers={"WWW-Authenticate": "Bearer"})(scope, receive, send)
                return
        await self.app(scope, receive, send)


class _Refused(Exception):
    """A request answered with an error status and a one-line reason."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status


async def _body(request: Any, options: ServeOptions) -> bytes:
    """The request's body, at most ``max_body`` bytes, sent within ``timeout`` seconds."""
    import anyio

    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > options.max_body:
        raise _Refused(413, f"a body of {declared} bytes is over the limit of {options.max_body}")
    chunks, size = [], 0
    try:
        with anyio.fail_after(options.timeout):
            async for chunk in request.stream():
                size += len(chunk)
                if size > options.max_body:
                    raise _Refused(413, f"a body over the limit of {options.max_body} bytes")
                chunks.append(chunk)
    except TimeoutError:
        raise _Refused(408, f"the body took over {options.timeout:g} s") from None
    return b"".join(chunks)


async def _image_bytes(request: Any, options: ServeOptions) -> bytes:
    """The posted image's bytes: the body, or a multipart form's first file."""
    from starlette.formparsers import MultiPartException, MultiPartParser

    data = await _body(request, options)
    if request.headers.get("content-type", "").startswith("multipart/form-data"):

        async def body() -> AsyncGenerator[bytes, None]:
            yield data

        parser = MultiPartParser(request.headers, body(), max_files=1, max_fields=10)
        parser.spool_max_size = options.max_body  # the file stays in memory: no file is written
        try:
            form = await parser.parse()
        except MultiPartException as error:
            raise _Refused(400, f"not a multipart form with one file: {error.message}") from None
        try:
            files = [value for _, value in form.multi_items() if hasattr(value, "read")]
            if not files:
                raise _Refused(400, "a multipart form without a file")
            data = await files[0].read()
        finally:
            await form.close()
    if not data:
        raise _Refused(400, "no image: the body is empty")
    return data


def _decoded(data: bytes, max_pixels: int) -> np.ndarray:
    """The image's pixels; its size read from its header (Pillow) and checked before it is decoded (OpenCV)."""
    from PIL import Image

    from livereader.live.capture import decode_image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as header:
                width, height = header.size
    except Image.DecompressionBombError:
        raise _Refused(413, f"an image over the limit of {max_pixels} pixels") from None
    except Exception:
        raise _Refused(400, "not an image (PNG, JPEG, BMP, TIFF, WebP or PNM)") from None
    if width * height > max_pixels:
        raise _Refused(413, f"an image of {width} x {height} pixels is over the limit of {max_pixels}")
    image = decode_image(data)
    if image is None:
        raise _Refused(400, "the image does not decode (truncated or corrupt)")
    return image


class _Turns:
    """Requests in flight: ``workers`` images read at once, up to ``queue`` more being received or waiting for a
    turn (each at most ``timeout`` seconds); beyond that a request gets 503 at once."""

    def __init__(self, options: ServeOptions):
        import anyio

        self.limiter = anyio.CapacityLimiter(options.workers)
        self.options, self.in_flight = options, 0

    @contextlib.asynccontextmanager
    async def admitted(self) -> AsyncIterator[None]:
        if self.in_flight >= self.options.workers + self.options.queue:
            raise _Refused(503, "busy: too many images waiting; try again")
        self.in_flight += 1
        try:
            yield
        finally:
            self.in_flight -= 1

    async def run(self, read: Callable[[], Any]) -> Any:
        """``read()`` on a worker thread once a turn is free (decoding included: the server's loop only waits)."""
        import anyio

        try:
            with anyio.fail_after(self.options.timeout):
                await self.limiter.acquire()
        except TimeoutError:
            raise _Refused(503, f"busy: no turn within {self.options.timeout:g} s; try again") from None
        try:
            return await anyio.to_thread.run_sync(read)
        finally:
            self.limiter.release()


def make_app(models: Any, options: ServeOptions, live: Live) -> Any:
    """The Starlette application (see the module docstring)."""
    from starlette.applications import Starlette
    from starlette.middleware.trustedhost import TrustedHostMiddleware
    from starlette.requests import Request
    from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
    from starlette.routing import Route

    from livereader.api import read as read_image
    from livereader.results import Code

    turns = _Turns(options)
    version = livereader.__version__

    async def page(request: Request) -> Response:
        name, media_type = _PAGE_FILES[request.url.path]
        text = resources.files("livereader.web").joinpath(name).read_text()
        return Response(text, media_type=media_type, headers=_HEADERS)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok", "version": version, "live": live.active, "reads": live.sequence})

    async def read(request: Request) -> Response:
        content = request.query_params.get("content", "numeric")
        errors = request.query_params.get("errors", "0") in ("1", "true", "yes")
        def decoded_and_read(data: bytes) -> list[Code]:
            return read_image(_decoded(data, options.max_pixels), content=content, return_errors=errors,
                              models=models)

        try:
            if content not in ("numeric", "any"):
                raise _Refused(400, f"content is numeric or any, not {content[:40]}")
            async with turns.admitted():
                data = await _image_bytes(request, options)
                codes = await turns.run(functools.partial(decoded_and_read, data))
        except _Refused as refused:
            return PlainTextResponse(f"{refused}\n", refused.status)
        found = [code.to_dict() for code in codes]
        live.publish(None, [{"frame": None, "source": "http", **code} for code in found if code["text"]])
        return JSONResponse(found)

    async def events(request: Request) -> Response:
        return StreamingResponse(_events(live, resumed(request.headers.get("last-event-id", ""), live)),
                                 media_type="text/event-stream", headers=_HEADERS)

    async def video(request: Request) -> Response:
        if not live.active:
            return PlainTextResponse("no live source\n", 404)
        return StreamingResponse(_frames(live), media_type="multipart/x-mixed-replace; boundary=frame",
                                 headers=_HEADERS)

    routes = [Route("/", page), Route("/page.js", page), Route("/healthz", healthz), Route("/read", read,
              methods=["POST"]), Route("/events", events), Route("/video.mjpg", video)]
    app: Any = Starlette(routes=routes)
    if options.token:
        return _Token(app, options.token)
    # no token: only requests to a loopback name, so that no web page can reach the service by renaming its own
    # host to this machine's address (DNS rebinding)
    return TrustedHostMiddleware(app, allowed_hosts=["127.0.0.1", "localhost", "[::1]"])


def resumed(last_event_id: str, live: Live) -> int:
    """The read after which an ``/events`` stream starts: the one a ``Last-Event-ID`` (``RUN-NUMBER``) names,
    where it is one of this run's (an id of an earlier run, or anything else: 0, every kept read)."""
    run, _, number = last_event_id.partition("-")
    seen = int(number) if run == live.run and re.fullmatch(r"[0-9]{1,18}", number) else 0
    return seen if seen <= live.sequence else 0


async def _events(live: Live, seen: int) -> AsyncIterator[str]:
    """Server-sent events: the reads after number ``seen``, as they come; a comment when quiet for 15 s (proxies
    keep the stream open). Ends when the client goes (the server cancels it)."""
    import anyio

    quiet = time.monotonic()
    yield "retry: 2000\n\n"
    while not live.closing:
        for number, line in live.reads_after(seen):
            seen, quiet = number, time.monotonic()
            yield f"id: {live.run}-{number}\ndata: {json.dumps(line)}\n\n"
        if time.monotonic() - quiet > 15:
            quiet = time.monotonic()
            yield ": keep-alive\n\n"
        await anyio.sleep(0.1)


async def _frames(live: Live) -> AsyncIterator[bytes]:
    """The live view as MJPEG parts, each new frame once (looked for 50 times a second)."""
    import anyio

    seen = 0
    while not live.closing:
        newest = live.frame_after(seen)
        if newest is not None:
            seen, jpeg = newest
            yield b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n%s\r\n" % (len(jpeg), jpeg)
        await anyio.sleep(0.02)


class Server:
    """The service on a thread of its own (uvicorn), started and stopped by the command line."""

    def __init__(self, models: Any, options: ServeOptions, live: Live):
        import uvicorn

        # connections at once (a page holds two streams), and a second for open streams at shut-down
        config = uvicorn.Config(make_app(models, options, live), host=options.host, port=options.port,
                                log_level="warning", timeout_keep_alive=5, lifespan="off", access_log=False,
                                limit_concurrency=256, timeout_graceful_shutdown=1)
        self.server, self.live = uvicorn.Server(config), live
        self.thread = threading.Thread(target=self.server.run, name="livereader-serve", daemon=True)

    def start(self) -> None:
        """Serve; ServeError where the address cannot be bound."""
        self.thread.start()
        while not self.server.started and self.thread.is_alive():
            time.sleep(0.02)
        if not self.server.started:
            raise ServeError("cannot serve on the address given (in use, or not this machine's)")

    @property
    def port(self) -> int:
        """The port served (the one the system chose for port 0)."""
        return int(self.server.servers[0].sockets[0].getsockname()[1])

    def stop(self) -> None:
        """The open streams end, then the server (those that do not end within a second are cancelled)."""
        self.live.closing = True
        time.sleep(0.15)  # the streams look every 0.1 s at most
        self.server.should_exit = True
        self.thread.join(timeout=10)
