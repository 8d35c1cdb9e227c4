"""A live view in the browser and a reading service over HTTP: ``livereader --serve [HOST:]PORT`` (``[serve]``).

Endpoints (Starlette, served by uvicorn on a thread of its own while the capture loop runs on the main thread):

- ``GET /``: the page (``livereader/web/``): the annotated live view and a live list of reads (text, confidence,
  first and last seen, times seen). Every text is put in the page as text, never as markup.
- ``GET /video.mjpg``: the annotated live view as an MJPEG stream (404 without a live source).
- ``GET /events``: reads as server-sent events, each a JSON line's fields (``frame``, ``source``, then
  :meth:`livereader.results.Code.to_dict`) with its ``id``; the live source's reads and those of ``POST /read``
  (source ``http``). The last :data:`HISTORY` reads come first; ``Last-Event-ID`` resumes after one.
- ``POST /read``: an encoded image as the body, or the first file of a multipart form; ``?content=any`` for any
  content, ``?errors=1`` for the codes that did not read too. Answers the JSON list of codes that
  :func:`livereader.read` gives for the same image (each :meth:`Code.to_dict`).
- ``GET /healthz``: ``{"status": "ok", ...}``.

Safe to expose (:class:`ServeOptions`): it binds 127.0.0.1 unless told otherwise, and any other address needs a
token, which every request must then carry (``Authorization: Bearer TOKEN``, or ``?token=TOKEN`` for the page,
compared in constant time). A posted body is read up to ``max_body`` bytes (413 beyond) within ``timeout``
seconds (408); an image's size is read from its header before it is decoded, and one over ``max_pixels`` is
refused (413), so a decompression bomb is never decoded; what is not an image, or does not decode, gets 400 with
a one-line reason. ``workers`` images are read at once; up to ``queue`` more wait (each at most ``timeout``
seconds), and beyond that a request gets 503 at once. Nothing reads or writes the server's files but the page's
own.
"""

from __future__ import annotations

import functools
import hmac
import io
import json
import os
import threading
import time
import warnings
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import numpy as np

HISTORY = 1000  # reads kept for /events clients that connect later
LOOPBACK = ("127.0.0.1", "::1", "localhost")
TOKEN_VARIABLE = "LIVEREADER_TOKEN"
_PAGE_FILES = {"/": ("index.html", "text/html; charset=utf-8"), "/page.js": ("page.js", "text/javascript")}
_HEADERS = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store",
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

    def publish(self, annotated: np.ndarray | None, lines: list[dict[str, Any]]) -> None:
        """A frame (None: no picture, as for a posted image) and the JSON lines of its reads."""
        jpeg = None
        if annotated is not None:
            import cv2

            jpeg = cv2.imencode(".jpg", annotated, [cv2.IMWRITE_JPEG_QUALITY, 80])[1].tobytes()
        with self.lock:
            if jpeg is not None:
                self.active = True
                self.frame = ((self.frame[0] + 1) if self.frame else 1, jpeg)
            for line in lines:
                self.sequence += 1
                self.reads.append((self.sequence, line))

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

        if scope["type"] == "http":
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

        try:
            form = await MultiPartParser(request.headers, body(), max_files=1, max_fields=10).parse()
        except MultiPartException as error:
            raise _Refused(400, f"not a multipart form: {error.message}") from None
        files = [value for _, value in form.multi_items() if hasattr(value, "read")]
        if not files:
            raise _Refused(400, "a multipart form without a file")
        data = await files[0].read()
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
    """Images read at once (``workers``), and those waiting (``queue``): 503 beyond, or after ``timeout``."""

    def __init__(self, options: ServeOptions):
        import anyio

        self.limiter = anyio.CapacityLimiter(options.workers)
        self.options, self.waiting = options, 0

    async def run(self, read: Callable[[], Any]) -> Any:
        import anyio

        if self.waiting >= self.options.queue:
            raise _Refused(503, "busy: too many images waiting; try again")
        self.waiting += 1
        try:
            with anyio.fail_after(self.options.timeout):
                await self.limiter.acquire()
        except TimeoutError:
            raise _Refused(503, f"busy: no turn within {self.options.timeout:g} s; try again") from None
        finally:
            self.waiting -= 1
        try:
            return await anyio.to_thread.run_sync(read)
        finally:
            self.limiter.release()


def make_app(models: Any, options: ServeOptions, live: Live) -> Any:
    """The Starlette application (see the module docstring)."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
    from starlette.routing import Route

    from livereader.api import read as read_image

    turns = _Turns(options)
    version = _version()

    async def page(request: Request) -> Response:
        name, media_type = _PAGE_FILES[request.url.path]
        text = resources.files("livereader.web").joinpath(name).read_text()
        return Response(text, media_type=media_type, headers=_HEADERS)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok", "version": version, "live": live.active, "reads": live.sequence})

    async def read(request: Request) -> Response:
        content = request.query_params.get("content", "numeric")
        errors = request.query_params.get("errors", "0") in ("1", "true", "yes")
        try:
            if content not in ("numeric", "any"):
                raise _Refused(400, f"content is numeric or any, not {content[:40]}")
            image = _decoded(await _image_bytes(request, options), options.max_pixels)
            codes = await turns.run(functools.partial(read_image, image, content=content, return_errors=errors,
                                                      models=models))
        except _Refused as refused:
            return PlainTextResponse(f"{refused}\n", refused.status)
        found = [code.to_dict() for code in codes]
        live.publish(None, [{"frame": None, "source": "http", **code} for code in found if code["text"]])
        return JSONResponse(found)

    async def events(request: Request) -> Response:
        resume = request.headers.get("last-event-id", "")
        return StreamingResponse(_events(live, int(resume) if resume.isdigit() else 0),
                                 media_type="text/event-stream", headers=_HEADERS)

    async def video(request: Request) -> Response:
        if not live.active:
            return PlainTextResponse("no live source\n", 404)
        return StreamingResponse(_frames(live), media_type="multipart/x-mixed-replace; boundary=frame",
                                 headers=_HEADERS)

    routes = [Route("/", page), Route("/page.js", page), Route("/healthz", healthz), Route("/read", read,
              methods=["POST"]), Route("/events", events), Route("/video.mjpg", video)]
    app: Any = Starlette(routes=routes)
    return _Token(app, options.token) if options.token else app


async def _events(live: Live, seen: int) -> AsyncIterator[str]:
    """Server-sent events: the reads after number ``seen``, as they come; a comment when quiet for 15 s (proxies
    keep the stream open). Ends when the client goes (the server cancels it)."""
    import anyio

    quiet = time.monotonic()
    yield "retry: 2000\n\n"
    while True:
        for number, line in live.reads_after(seen):
            seen, quiet = number, time.monotonic()
            yield f"id: {number}\ndata: {json.dumps(line)}\n\n"
        if time.monotonic() - quiet > 15:
            quiet = time.monotonic()
            yield ": keep-alive\n\n"
        await anyio.sleep(0.1)


async def _frames(live: Live) -> AsyncIterator[bytes]:
    """The live view as MJPEG parts, each new frame once (looked for 50 times a second)."""
    import anyio

    seen = 0
    while True:
        newest = live.frame_after(seen)
        if newest is not None:
            seen, jpeg = newest
            yield b"--frame\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n%s\r\n" % (len(jpeg), jpeg)
        await anyio.sleep(0.02)


def _version() -> str:
    from importlib.metadata import version

    return version("livereader")


class Server:
    """The service on a thread of its own (uvicorn), started and stopped by the command line."""

    def __init__(self, models: Any, options: ServeOptions, live: Live):
        import uvicorn

        config = uvicorn.Config(make_app(models, options, live), host=options.host, port=options.port,
                                log_level="warning", timeout_keep_alive=5, lifespan="off", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="livereader-serve", daemon=True)

    def start(self) -> None:
        """Serve; ServeError where the address cannot be bound."""
        self.thread.start()
        while not self.server.started and self.thread.is_alive():
            time.sleep(0.02)
        if not self.server.started:
            raise ServeError("cannot serve on the address given (in use, or not this machine's)")

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
