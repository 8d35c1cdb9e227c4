import http.server
import signal
import threading
import time

import cv2
import numpy as np
import pytest

from livereader.symbol import encode
from livereader.train.data import held_out_numbers


@pytest.fixture(scope="session", autouse=True)
def compiled_kernels():
    """Every test in this process reads with the compiled kernels, as a process does once they are ready
    (livereader.compiled); tests/test_kernels.py compares them with their plain references."""
    from livereader import compiled

    compiled.use_kernels()


@pytest.fixture(scope="session")
def model():
    from livereader import load_model

    return load_model()


@pytest.fixture(scope="session")
def held_out():
    """300 held-out numbers with their grids: the first 200 with qrcode's mask, the rest with given masks."""
    numbers = np.random.default_rng(0).choice(held_out_numbers(), 300, replace=False)
    grids = np.stack([encode("%06d" % n, "H", None if i < 200 else i % 8) for i, n in enumerate(numbers)])
    return numbers, grids


def _jpeg(image: np.ndarray) -> bytes:
    return cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()


class _MJPEGHandler(http.server.BaseHTTPRequestHandler):
    """An MJPEG stream over HTTP: the class's frames (JPEG bytes), ``interval`` seconds
    apart (each one's send time appended to ``sent``), then the connection held open for ``stall`` seconds and
    closed."""

    frames: list = []
    interval = 0.1
    stall = 0.0
    sent: list = []

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
        self.end_headers()
        for jpeg in self.frames:
            self.wfile.write(b"--frame\r\nContent-Type: image/jpeg\r\n")
            self.wfile.write(f"Content-Length: {len(jpeg)}\r\n\r\n".encode() + jpeg + b"\r\n")
            self.wfile.flush()
            self.sent.append(time.monotonic())
            time.sleep(self.interval)
        time.sleep(self.stall)

    def log_message(self, *args):
        pass


@pytest.fixture
def serve_mjpeg():
    """A function that serves frames as an MJPEG stream on 127.0.0.1 and returns its URL; stopped after the test."""
    servers = []

    def serve(frames, interval=0.1, stall=0.0, sent=None):
        # images encoded before serving (bytes are served as a JPEG as they are): the server's pace stays steady
        jpegs = [image if isinstance(image, bytes) else _jpeg(image) for image in frames]
        handler = type("Handler", (_MJPEGHandler,), {"frames": jpegs, "interval": interval, "stall": stall,
                                                      "sent": [] if sent is None else sent})
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/video.mjpg"

    yield serve
    for server in servers:
        server.shutdown()


def interruptible() -> None:
    """A subprocess's ``preexec_fn``: Ctrl-C (SIGINT) acts as from a terminal, also when the tests run in a
    background job (nohup, ``&``), whose children inherit SIGINT ignored."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
