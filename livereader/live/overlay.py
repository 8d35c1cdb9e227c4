"""Drawing results on a frame: each code's outline, its number and confidence, and the frames per second."""

from __future__ import annotations

import cv2
import numpy as np

from livereader.results import READ, REJECTED, CodeResult

_COLOURS = {READ: (60, 200, 60), REJECTED: (0, 140, 255)}  # BGR; unsupported codes are grey
_GREY = (160, 160, 160)


def draw(image: np.ndarray, results: list[CodeResult], fps: float | None = None) -> np.ndarray:
    """A copy of the BGR frame with the results (and the frame rate, when given) drawn on it."""
    out = image.copy()
    scale = max(out.shape[:2]) / 1000
    thickness = max(1, round(2 * scale))
    for result in results:
        colour = _COLOURS.get(result.status, _GREY)
        corners = np.array(result.corners, np.float32)
        cv2.polylines(out, [corners.round().astype(np.int32)], True, colour, thickness, cv2.LINE_AA)
        cv2.circle(out, tuple(corners[0].round().astype(int)), thickness + 2, colour, -1, cv2.LINE_AA)  # tl
        if result.status == READ:
            assert result.text is not None  # a read holds its text (CodeResult)
            label = f"{_printable(result.text)} {100 * result.confidence:.0f}%"
        else:
            label = "no read" if result.status == REJECTED else f"unsupported {result.modules}x{result.modules}"
        _label(out, label, corners[:, 0].min(), corners[:, 1].min(), colour, scale)
    if fps is not None:
        _label(out, f"{fps:.0f} fps", 8, 8, (255, 255, 255), scale)
    return out


def _printable(text: str, limit: int = 32) -> str:
    """A read's text as OpenCV's fonts can draw it: ASCII, other characters as '?', cut at ``limit``."""
    shown = "".join(c if " " <= c <= "~" else "?" for c in text)
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."


def _label(image: np.ndarray, text: str, x: float, y: float, colour: tuple, scale: float) -> None:
    """Text on a dark box whose top-left corner is at (x, y - text height), kept inside the frame."""
    font, size = cv2.FONT_HERSHEY_SIMPLEX, max(0.45, 0.7 * scale)
    weight = max(1, round(1.5 * scale))
    (w, h), base = cv2.getTextSize(text, font, size, weight)
    x = int(np.clip(x, 0, max(image.shape[1] - w - 4, 0)))
    y = int(np.clip(y - 4, h + 4, image.shape[0] - base))
    cv2.rectangle(image, (x, y - h - 4), (x + w + 4, y + base), (0, 0, 0), -1)
    cv2.putText(image, text, (x + 2, y - 2), font, size, colour, weight, cv2.LINE_AA)
