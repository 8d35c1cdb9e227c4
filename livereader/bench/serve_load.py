"""The HTTP service under load (``livereader-bench --serve-load DIR``): clients posting photos at once.

Every photo under DIR is shrunk to a 1280 px long side and JPEG-encoded once; :func:`livereader.read` reads each
encoded photo first, alone (``content="any"``), which gives the answers expected and the time of a read alone.
Then a service (:class:`livereader.serve.Server`, on 127.0.0.1, reading as many images at once as it has cores)
takes ``clients`` threads, each posting the next photo to ``POST /read?content=any`` as soon as it has its answer
to the last, until ``requests`` requests were answered. An answer is right when its codes are those expected
(text, corners, every field); the figures: requests, right answers, throughput, latency percentiles.
"""

from __future__ import annotations

import http.client
import itertools
import json
import socket
import threading
import time
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from livereader.bench import footage


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def run_serve_load(folder: Path, models: Any, clients: int = 8, requests: int = 200, side: int = 1280) -> dict:
    from livereader.api import read
    from livereader.serve import Live, ServeOptions, Server

    photos = []
    for path in footage.photo_paths(folder):
        image = cv2.imread(str(path))
        if image is not None:
            photos.append(cv2.imencode(".jpg", footage.scaled(image, side), [cv2.IMWRITE_JPEG_QUALITY, 95])[1]
                          .tobytes())
    if not photos:
        raise footage.RunError(f"no photos under {folder}")
    alone, expected = [], []
    for data in photos:
        started = time.perf_counter()
        expected.append([code.to_dict() for code in read(data, content="any", models=models)])
        alone.append(time.perf_counter() - started)
    options = ServeOptions(port=_free_port())
    server = Server(models, options, Live())
    server.start()
    order = itertools.count()
    lock = threading.Lock()
    latencies: list[float] = []
    wrong: list[int] = []

    def client() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", options.port, timeout=120)
        while True:
            with lock:
                number = next(order)
            if number >= requests:
                break
            index = number % len(photos)
            started = time.perf_counter()
            connection.request("POST", "/read?content=any", body=photos[index],
                               headers={"Content-Type": "image/jpeg"})
            answer = connection.getresponse()
            body = answer.read()
            with lock:
                latencies.append(time.perf_counter() - started)
                if answer.status != 200 or json.loads(body) != expected[index]:
                    wrong.append(index)
        connection.close()

    threads = [threading.Thread(target=client) for _ in range(clients)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    server.stop()
    return {"photos": len(photos), "clients": clients, "requests": len(latencies), "wrong": len(wrong),
            "wrong_photos": sorted(set(wrong)), "readers": options.workers, "seconds": elapsed,
            "per_second": len(latencies) / elapsed, "latency_ms": {f"p{q}": 1000 * float(np.percentile(latencies, q))
                                                                    for q in (50, 90, 99)},
            "alone_ms": {"p50": 1000 * float(np.median(alone)), "mean": 1000 * float(np.mean(alone))},
            "codes": sum(len(codes) for codes in expected)}


def report_serve_load(figures: dict, folder: str) -> list[str]:
    latency = figures["latency_ms"]
    return [f"HTTP service: {figures['clients']} clients posting {figures['requests']} photos of {folder} "
            f"(1280 px, {figures['photos']} photos, {figures['codes']} codes), {figures['readers']} read at once",
            f"  answers unlike livereader.read's: {figures['wrong']}"
            + (f" (photos {figures['wrong_photos']})" if figures["wrong"] else ""),
            f"  {figures['per_second']:.1f} requests/s; latency p50 {latency['p50']:.0f} ms, p90 "
            f"{latency['p90']:.0f} ms, p99 {latency['p99']:.0f} ms; a read alone: median "
            f"{figures['alone_ms']['p50']:.0f} ms, mean {figures['alone_ms']['mean']:.0f} ms"]
