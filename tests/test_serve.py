"""The HTTP service and its page: reads as livereader.read gives them, bad requests refused, a token, busy
answers, streams that clients drop, and the page in a real headless browser."""

import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.request
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import interruptible

pytest.importorskip("starlette", reason="the [serve] extra is not installed")
from starlette.testclient import TestClient  # noqa: E402

import livereader  # noqa: E402
from livereader.serve import (  # noqa: E402
    Live,
    ServeError,
    ServeOptions,
    _Refused,
    _Turns,
    address,
    make_app,
    resumed,
)
from livereader.symbol import encode  # noqa: E402


def _page(text: str, module: int = 8) -> bytes:
    """A PNG of one code holding ``text`` (a number, or any text: byte mode)."""
    grid = encode(text, "M")
    page = np.pad(255 - 255 * grid, 4, constant_values=255).astype(np.uint8).repeat(module, 0).repeat(module, 1)
    return cv2.imencode(".png", np.pad(page, 30, constant_values=255))[1].tobytes()


def _png_header(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width`` x ``height`` pixels, with hardly any data."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + \
        chunk(b"IEND", b"")


@pytest.fixture(scope="module")
def models():
    from livereader.decode.reader import load_models

    return load_models(None)  # the shipped models: numbers, and any content


@pytest.fixture
def client(models):
    app = make_app(models, ServeOptions(max_body=200_000), Live())
    with TestClient(app, base_url="http://127.0.0.1") as client:
        yield client


def test_post_read_answers_the_codes_that_read_gives_as_a_body_or_a_form(client, models):
    image = _page("Hello 12")
    expected = [code.to_dict() for code in livereader.read(image, content="any", models=models)]
    assert expected and expected[0]["text"] == "Hello 12"
    assert client.post("/read?content=any", content=image).json() == expected
    assert client.post("/read?content=any", files={"photo": ("page.png", image, "image/png")}).json() == expected
    assert client.post("/read", content=image).json() == []  # not a number: read only with content=any
    assert client.post("/read", content=_page("424242")).json()[0]["text"] == "424242"
    assert client.get("/healthz").json()["status"] == "ok"


def test_bad_requests_get_a_4xx_with_a_reason_and_the_service_answers_on(client):
    truncated = _page("424242")[:300]
    bad = {
        "empty body": (b"", 400),
        "truncated PNG": (truncated, 400),
        "text file": (b"just some text\n" * 10, 400),
        "50,000 x 50,000 PNG header": (_png_header(50_000, 50_000), 413),
        "body over the limit": (b"\x89PNG" + bytes(300_000), 413),
        "body over the limit, sent in chunks": ((bytes(1000) for _ in range(300)), 413),
    }
    for name, (body, status) in bad.items():
        answer = client.post("/read", content=body)
        assert answer.status_code == status, name
        assert answer.text.count("\n") == 1 and len(answer.text) < 120, name  # one line
    big_file = {"image": ("big.png", b"\x89PNG" + bytes(300_000), "image/png")}
    assert client.post("/read", files=big_file).status_code == 413
    assert client.post("/read", files={"a": ("a.png", _page("1"), "image/png"),
                                       "b": ("b.png", _page("2"), "image/png")}).status_code == 400
    assert client.get("/healthz", headers={"Host": "attacker.example"}).status_code == 400  # DNS rebinding
    assert client.get("/healthz", headers={"Host": "[::1]:8080"}).status_code == 200
    assert client.post("/read?content=xml", content=_page("1")).status_code == 400
    assert client.post("/read", content=_page("424242")).json()[0]["text"] == "424242"  # still answering


def test_a_token_is_needed_on_every_request_for_data_when_set(models):
    with TestClient(make_app(models, ServeOptions(token="s3cret"), Live())) as client:
        for path in ("/healthz", "/events", "/video.mjpg", "/read"):
            assert client.get(path).status_code == 401
            assert client.get(path, headers={"Authorization": "Bearer wrong"}).status_code == 401
            assert client.get(path + "?token=s3cre").status_code == 401
        assert client.post("/read", content=_page("424242")).status_code == 401
        for path in ("/", "/page.js"):  # the page's static files hold no data; the page asks with ?token=
            assert client.get(path).status_code == 200
        assert client.get("/healthz?token=s3cret").status_code == 200
        answer = client.post("/read", content=_page("424242"), headers={"Authorization": "Bearer s3cret"})
        assert answer.json()[0]["text"] == "424242"


def test_events_resume_after_an_id_of_this_run_and_tally_each_code():
    live = Live()
    live.publish(None, [{"frame": 1, "source": "cam", "text": "1", "confidence": 1.0}] * 2)
    live.publish(None, [{"frame": 2, "source": "cam", "text": "2", "confidence": 1.0}])
    assert [line["times_seen"] for _, line in live.reads_after(0)] == [1, 2, 1]
    assert live.reads_after(0)[1][1]["first_seen"] <= live.reads_after(0)[1][1]["last_seen"]
    assert resumed(f"{live.run}-2", live) == 2 and [n for n, _ in live.reads_after(2)] == [3]
    for other in ("", "2", "x-2", f"{live.run}-99", f"{live.run}-\u00b2", f"{live.run}-" + "1" * 5000):
        assert resumed(other, live) == 0  # an earlier run's id, junk: every kept read


def test_binding_beyond_loopback_needs_a_token():
    assert address("8080") == ("127.0.0.1", 8080) and address("0.0.0.0:80") == ("0.0.0.0", 80)
    with pytest.raises(ServeError, match="needs a token"):
        ServeOptions(host="0.0.0.0").checked()
    assert ServeOptions(host="0.0.0.0", token="t").checked().host == "0.0.0.0"
    assert ServeOptions().host == "127.0.0.1"
    assert address("[::1]:8080") == ("::1", 8080)
    with pytest.raises(ServeError):
        address("::1")


def test_requests_beyond_the_readers_and_the_queue_get_503_at_once():
    import anyio

    release = threading.Event()
    turns = _Turns(ServeOptions(workers=1, queue=1, timeout=5))
    outcomes = []

    async def request() -> None:
        try:
            async with turns.admitted():
                outcomes.append(await turns.run(lambda: release.wait(10)))
        except _Refused as refused:
            outcomes.append(refused.status)
            release.set()  # the third is refused at once: let the others finish

    async def three() -> None:
        async with anyio.create_task_group() as group:
            for _ in range(3):
                group.start_soon(request)
                await anyio.sleep(0.1)

    anyio.run(three)
    assert outcomes == [503, True, True]  # one read, one waited its turn, one refused


def _serve(*args: str) -> tuple[subprocess.Popen, str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen([sys.executable, "-m", "livereader.cli", *args, "--serve", f"127.0.0.1:{port}",
                                "--nodisplay", "--jsonl", os.devnull], stderr=subprocess.PIPE, text=True,
                               preexec_fn=interruptible)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url, timeout=1)  # the page: no token needed
            return process, url
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise AssertionError("the service did not start: " + process.stderr.read())


def _status(pid: int) -> dict:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return {key: value.split()[0] for key, value in (line.split(":", 1) for line in lines) if value.split()}


@pytest.mark.slow
def test_fifty_dropped_streams_leave_no_threads_or_memory_behind():
    process, url = _serve("--demo")
    try:
        def drop(path: str) -> None:
            with socket.create_connection(("127.0.0.1", int(url.split(":")[2].strip("/")))) as connection:
                connection.sendall(f"GET /{path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
                assert connection.recv(4096).startswith(b"HTTP/1.1 200")  # the stream has started

        deadline = time.monotonic() + 30
        while not json.loads(urllib.request.urlopen(url + "healthz", timeout=5).read())["live"]:
            assert time.monotonic() < deadline, "no live frame"
            time.sleep(0.1)  # the demo's first frame
        for _ in range(5):  # warm: the first streams allocate what every later one reuses
            drop("video.mjpg")
            drop("events")
        time.sleep(1)
        before = _status(process.pid)
        for i in range(50):
            drop("video.mjpg" if i % 2 else "events")
        time.sleep(2)  # the server notices each disconnect
        after = _status(process.pid)
        assert int(after["Threads"]) <= int(before["Threads"])
        assert int(after["VmRSS"]) - int(before["VmRSS"]) < 20_000  # kB: no stream's buffers kept
        assert json.loads(urllib.request.urlopen(url + "healthz", timeout=5).read())["live"]
    finally:
        process.terminate()
        process.wait(timeout=30)


def _browser():
    webdriver = pytest.importorskip("selenium.webdriver")
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        pytest.skip("needs Debian's chromium and chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1400,900"):
        options.add_argument(flag)
    service = webdriver.ChromeService(executable_path=shutil.which("chromedriver"))
    return webdriver.Chrome(options=options, service=service)


@pytest.mark.slow
@pytest.mark.parametrize("token", [None, "s3cret"])
def test_the_page_shows_the_live_view_and_the_reads_and_text_stays_text(tmp_path, token):
    process, url = _serve("--demo", "--content", "any", *(["--token", token] if token else []))
    browser = _browser()
    try:
        browser.get(url + (f"?token={token}" if token else ""))
        view = browser.find_element("id", "view")
        deadline = time.monotonic() + 20
        while not browser.execute_script("return arguments[0].naturalWidth", view) and time.monotonic() < deadline:
            time.sleep(0.1)
        shots = []
        for _ in range(4):  # half a second apart: the stream may pause once, for the kernels' load (about 0.5 s)
            time.sleep(0.5)
            shots.append(cv2.imdecode(np.frombuffer(view.screenshot_as_png, np.uint8), cv2.IMREAD_GRAYSCALE))
        assert all(shot.std() > 10 for shot in shots)  # a picture, not a blank
        assert max(np.abs(a.astype(int) - b).mean() for a, b in zip(shots, shots[1:])) > 1  # and a live one
        started = time.monotonic()
        while not browser.find_elements("css selector", "#reads tbody tr") and time.monotonic() - started < 5:
            time.sleep(0.1)
        assert browser.find_elements("css selector", "#reads tbody tr"), "no read listed within 5 s"
        request = urllib.request.Request(url + "read?content=any", data=_page("<b>x</b>"), method="POST",
                                         headers={"Authorization": f"Bearer {token}"} if token else {})
        assert json.loads(urllib.request.urlopen(request, timeout=30).read())[0]["text"] == "<b>x</b>"
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and "<b>x</b>" not in browser.find_element("id", "reads").text:
            time.sleep(0.1)
        assert "<b>x</b>" in browser.find_element("id", "reads").text  # shown as text
        assert not browser.find_elements("css selector", "#reads b")  # not as markup
        browser.save_screenshot(str(tmp_path / "page.png"))
        print(f"screenshot: {tmp_path / 'page.png'}")
        assert (tmp_path / "page.png").stat().st_size > 10_000
    finally:
        browser.quit()
        process.terminate()
        process.wait(timeout=30)
    assert process.returncode in (0, 143)


@pytest.mark.slow
def test_the_api_alone_answers_and_ends_at_ctrl_c():
    import signal

    process, url = _serve()
    health = json.loads(urllib.request.urlopen(url + "healthz", timeout=5).read())
    assert health["status"] == "ok" and not health["live"]
    assert urllib.request.urlopen(url, timeout=5).read().count(b"page.js") == 1
    events = urllib.request.urlopen(url + "events", timeout=5)  # a stream open at Ctrl-C ends cleanly
    assert events.readline() == b"retry: 2000\n"
    process.send_signal(signal.SIGINT)
    stopped = time.monotonic()
    assert process.wait(timeout=30) == 130 and time.monotonic() - stopped < 5
    err = process.stderr.read()
    assert "Traceback" not in err and "ERROR" not in err, err
    events.close()
