"""Camera calibration: chessboard views -> camera matrix and lens distortion, saved as a profile that
``livereader --calibration`` uses to undistort every frame before reading it.

A profile is an OpenCV FileStorage YAML file: ``camera_matrix`` (3x3, pixels), ``distortion`` (1x5: k1 k2 p1 p2
k3, OpenCV's model), ``image_width`` and ``image_height`` (pixels), ``rms`` (RMS reprojection error of the
calibration, pixels), ``views`` (chessboard views used) and ``board`` (inner corners, e.g. "9x6"). The board
is found by ``cv2.findChessboardCornersSB`` and the camera fitted by ``cv2.calibrateCamera``; undistortion maps
are computed once per profile (``cv2.initUndistortRectifyMap``) and applied with ``cv2.remap``.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

MIN_VIEWS = 5  # fewer chessboard views than this give no trustworthy fit
_FIND_FLAGS = cv2.CALIB_CB_NORMALIZE_IMAGE | cv2.CALIB_CB_EXHAUSTIVE | cv2.CALIB_CB_ACCURACY


class CalibrationError(Exception):
    """A calibration or profile problem (the message is one line)."""


@dataclass(frozen=True)
class Profile:
    camera_matrix: np.ndarray  # (3, 3) float64
    distortion: np.ndarray  # (5,) float64: k1 k2 p1 p2 k3
    image_size: tuple[int, int]  # (width, height)
    rms: float
    views: int
    board: tuple[int, int]  # inner corners (columns, rows)


def parse_board(text: str) -> tuple[int, int]:
    """"9x6" -> (9, 6): inner corners per row and per column."""
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not match or min(int(match[1]), int(match[2])) < 2:
        raise argparse.ArgumentTypeError(f"board must be COLSxROWS inner corners, e.g. 9x6: {text!r}")
    return int(match[1]), int(match[2])


def find_board(grey: np.ndarray, board: tuple[int, int]) -> np.ndarray | None:
    """(N, 1, 2) float32 inner corners of the chessboard in a grey uint8 image, or None."""
    found, corners = cv2.findChessboardCornersSB(grey, board, flags=_FIND_FLAGS)
    return corners.astype(np.float32) if found else None


def calibrate(images: Iterable[np.ndarray], board: tuple[int, int]) -> Profile:
    """Fit the camera to every image (BGR or grey, all the same size) in which the whole board is found."""
    pattern = np.zeros((board[0] * board[1], 3), np.float32)
    pattern[:, :2] = np.mgrid[: board[0], : board[1]].T.reshape(-1, 2)  # square size 1: focal lengths need none
    object_points: list[np.ndarray] = []
    image_points: list[np.ndarray] = []
    size: tuple[int, int] | None = None  # (width, height)
    for image in images:
        grey = image if image.ndim == 2 else cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        view_size = (grey.shape[1], grey.shape[0])
        if size is not None and view_size != size:
            raise CalibrationError(f"views differ in size: {grey.shape[1]}x{grey.shape[0]} after {size[0]}x{size[1]}")
        size = view_size
        corners = find_board(grey, board)
        if corners is not None:
            object_points.append(pattern)
            image_points.append(corners)
    if len(image_points) < MIN_VIEWS:
        raise CalibrationError(f"chessboard {board[0]}x{board[1]} found in {len(image_points)} views, "
                               f"{MIN_VIEWS} needed (is --board the count of inner corners?)")
    assert size is not None  # MIN_VIEWS > 0 views were seen
    rms, matrix, distortion, _, _ = cv2.calibrateCamera(object_points, image_points, size, None, None)
    return Profile(matrix, distortion.ravel()[:5].astype(np.float64), size, float(rms), len(image_points), board)


def save_profile(profile: Profile, path: str | Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    storage = cv2.FileStorage(str(path), cv2.FILE_STORAGE_WRITE)
    if not storage.isOpened():
        raise CalibrationError(f"cannot write {path}")
    storage.write("camera_matrix", profile.camera_matrix)
    storage.write("distortion", profile.distortion.reshape(1, -1))
    storage.write("image_width", profile.image_size[0])
    storage.write("image_height", profile.image_size[1])
    storage.write("rms", profile.rms)
    storage.write("views", profile.views)
    storage.write("board", f"{profile.board[0]}x{profile.board[1]}")
    storage.release()


def load_profile(path: str | Path) -> Profile:
    """A profile written by :func:`save_profile`; CalibrationError when it is missing or not one."""
    if not Path(path).is_file():
        raise CalibrationError(f"no such calibration profile: {path}")
    try:
        storage = cv2.FileStorage(str(path), cv2.FILE_STORAGE_READ)
    except (cv2.error, SystemError):  # OpenCV's parse error comes wrapped in a SystemError
        raise CalibrationError(f"not a calibration profile (unreadable YAML): {path}") from None
    try:
        matrix = storage.getNode("camera_matrix").mat()
        distortion = storage.getNode("distortion").mat()
        width, height = int(storage.getNode("image_width").real()), int(storage.getNode("image_height").real())
        rms, views = storage.getNode("rms").real(), int(storage.getNode("views").real())
        board = storage.getNode("board").string()
    finally:
        storage.release()
    if matrix is None or matrix.shape != (3, 3) or distortion is None or distortion.size < 4 or min(width, height) <= 0:
        raise CalibrationError(f"not a calibration profile (needs camera_matrix, distortion, image size): {path}")
    cols, _, rows = board.partition("x")
    return Profile(matrix.astype(np.float64), distortion.ravel().astype(np.float64), (width, height), rms, views,
                   (int(cols), int(rows)) if cols.isdigit() and rows.isdigit() else (0, 0))


class Undistorter:
    """Undistorts frames of the profile's size; maps are computed once, here."""

    def __init__(self, profile: Profile):
        self.profile = profile
        self.maps = cv2.initUndistortRectifyMap(profile.camera_matrix, profile.distortion, None,
                                                profile.camera_matrix, profile.image_size, cv2.CV_16SC2)

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        height, width = frame.shape[:2]
        if (width, height) != self.profile.image_size:
            w, h = self.profile.image_size
            raise CalibrationError(f"calibration profile is for {w}x{h} frames, the source gives {width}x{height}")
        return cv2.remap(frame, *self.maps, cv2.INTER_LINEAR)


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="livereader-calibrate",
                                     description="Calibrate a camera from chessboard views; write a profile for "
                                                 "livereader --calibration.")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--images", nargs="+", metavar="PATH", help="image files or folders of chessboard views")
    source.add_argument("--video", metavar="PATH", help="video of the chessboard (every --step-th frame is used)")
    source.add_argument("--camera", metavar="N|URL", help="camera index or stream URL (--views frames are used)")
    source.add_argument("--demo", action="store_true",
                        help="chessboard views rendered by a built-in virtual camera with known intrinsics and "
                             "distortion; prints the recovered values next to the true ones")
    parser.add_argument("--board", type=parse_board, required=True, metavar="COLSxROWS",
                        help="inner corners of the chessboard, e.g. 9x6")
    parser.add_argument("--out", required=True, metavar="PATH", help="profile to write, e.g. calibration/webcam.yaml")
    parser.add_argument("--step", type=int, default=10, help="--video: use every STEP-th frame (default 10)")
    parser.add_argument("--views", type=int, default=20,
                        help="--camera and --demo: chessboard views to collect or render (default 20)")
    return parser


def _views(args: argparse.Namespace) -> Iterator[np.ndarray]:
    from livereader.live import capture

    capture.quiet_backends()
    if args.images:
        frames = capture.images(capture.image_files(args.images))
    elif args.video:
        frames = (f for f in capture.video(args.video) if f.index % max(args.step, 1) == 0)
    else:
        frames = _camera_views(capture.camera(args.camera), args.board, args.views)
    for frame in frames:
        if frame.image is None:
            print(f"livereader-calibrate: warning: {frame.source} frame {frame.index} could not be decoded: "
                  "skipped", file=sys.stderr)
            continue
        yield frame.image


def _camera_views(frames: Iterator, board: tuple[int, int], views: int) -> Iterator:
    """Frames of a live camera in which the board is found, at most ``views`` of them, 15 frames apart at least."""
    found, last = 0, -15
    for frame in frames:
        if frame is None or frame.image is None or frame.index - last < 15:  # None: no new frame yet
            continue
        grey = cv2.cvtColor(frame.image, cv2.COLOR_BGR2GRAY)
        if find_board(grey, board) is not None:
            found, last = found + 1, frame.index
            print(f"livereader-calibrate: view {found} of {views}", file=sys.stderr)
            yield frame
            if found >= views:
                return


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    from livereader.live.capture import SourceError

    try:
        if args.demo:
            from livereader.synth.scene import DEMO_CAMERA, chessboard_views

            profile = calibrate(chessboard_views(args.board, DEMO_CAMERA, args.views, seed=0), args.board)
        else:
            profile = calibrate(_views(args), args.board)
        save_profile(profile, args.out)
    except (CalibrationError, SourceError, OSError) as error:
        print(f"livereader-calibrate: error: {error}", file=sys.stderr)
        return 1
    fx, fy = profile.camera_matrix[0, 0], profile.camera_matrix[1, 1]
    print(f"livereader-calibrate: {profile.views} views, RMS reprojection error {profile.rms:.3f} px; "
          f"fx {fx:.1f}, fy {fy:.1f}, k1 {profile.distortion[0]:.4f}; wrote {args.out}", file=sys.stderr)
    if args.demo:
        true = DEMO_CAMERA
        print(f"livereader-calibrate: true fx {true.camera_matrix[0, 0]:.1f}, fy {true.camera_matrix[1, 1]:.1f}, "
              f"k1 {true.distortion[0]:.4f}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
