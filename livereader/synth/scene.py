"""Synthetic camera frames with known codes: for the tests, the demo and the benchmark.

A scene is a BGR frame with version-1 number codes (held-out six-digit numbers at level H, or in the ``numeric``
category held-out numbers of any length at any level) rendered with
perspective, and the truth about every code in it, distractors included. Degradations (blur, motion blur,
noise, light, shadow, JPEG) follow the category (see ``CATEGORIES``). Points are (x, y) pixels in OpenCV's
convention (integer coordinates at pixel centres); corners are in the order tl, tr, br, bl of the symbol as its
finder patterns define it (for a mirrored code too), and span the 21x21 symbol without its quiet zone.

A :class:`Clip` holds consecutive frames of the same moving codes (:func:`clip`), for tracking. For
calibration, a :class:`VirtualCamera` with known intrinsics and lens distortion renders chessboard views
(:func:`chessboard_views`) and bends scenes as its lens would (:func:`lens_scenes`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from functools import lru_cache

import cv2
import numpy as np

from livereader.symbol import LEVELS, SIZE, encode

QUIET = 4  # modules of quiet zone rendered around each code
_SOURCE_PX = 8  # pixels per module of the image a code is warped from


@dataclass(frozen=True)
class TruthCode:
    """One code in a scene: ``text`` is its payload; ``supported`` is True for the scene's own numeric version-1
    codes, which its read rate counts (foreign codes are not counted, even where livereader reads them)."""

    text: str
    corners: tuple[tuple[float, float], ...]  # tl, tr, br, bl in pixels
    supported: bool
    module_px: float  # module size at the code's centre, pixels


@dataclass(frozen=True)
class Scene:
    image: np.ndarray  # (H, W, 3) uint8 BGR
    codes: tuple[TruthCode, ...]
    category: str


@dataclass(frozen=True)
class SceneConfig:
    """How a category renders its frames; ranges are (low, high), drawn uniformly per code or frame."""

    codes: tuple[int, int] = (1, 1)  # number codes per frame
    module_px: tuple[float, float] = (3.5, 8.0)
    tilt: tuple[float, float] = (0.0, 20.0)  # degrees out of the image plane
    blur: tuple[float, float] = (0.0, 0.15)  # Gaussian sigma in modules of the (first) code
    motion: tuple[float, float] = (0.0, 0.0)  # motion blur length in modules
    noise: tuple[float, float] = (0.0, 4.0)  # Gaussian noise sigma, grey levels
    contrast: tuple[float, float] = (0.75, 1.0)  # dark-to-light range kept, as a share of 0-255
    gradient: float = 0.15  # largest light ramp across the frame, share of 255
    shadow: bool = False  # a hard-edged shadow over part of the frame
    jpeg: tuple[int, int] = (0, 0)  # JPEG quality range; 0 = no JPEG
    inverted: bool = False
    mirrored: bool = False
    numeric: bool = False  # numeric codes of any length and level instead of six-digit level-H ones
    foreign: tuple[int, int] = (0, 0)  # foreign QR codes (text, other versions) per frame
    clutter: tuple[int, int] = (3, 8)  # background shapes and text


CATEGORIES: dict[str, SceneConfig] = {
    "clean": SceneConfig(),
    "small": SceneConfig(module_px=(2.0, 2.6), tilt=(0.0, 10.0)),
    "perspective": SceneConfig(tilt=(35.0, 55.0), module_px=(4.0, 8.0)),
    "blur": SceneConfig(blur=(0.3, 0.6), module_px=(4.0, 8.0)),
    "blur0.7": SceneConfig(blur=(0.7, 0.7), module_px=(4.0, 8.0)),
    "motion": SceneConfig(motion=(1.0, 3.0), module_px=(4.0, 8.0)),
    "noise": SceneConfig(noise=(25.0, 40.0), module_px=(4.0, 8.0)),
    "dark": SceneConfig(contrast=(0.2, 0.35), gradient=0.3),
    "shadow": SceneConfig(shadow=True),
    "jpeg": SceneConfig(jpeg=(15, 40)),
    "several": SceneConfig(codes=(2, 4), module_px=(3.0, 5.0)),
    "inverted": SceneConfig(inverted=True),
    "mirrored": SceneConfig(mirrored=True),
    "distractors": SceneConfig(foreign=(2, 3), clutter=(10, 20), module_px=(3.0, 5.0)),
    "numeric": SceneConfig(numeric=True),
}

# Clips too degraded for most single frames, for temporal fusion (see livereader.live.fuse).
HARD_CLIPS: dict[str, SceneConfig] = {
    "motion+noise": SceneConfig(motion=(2.0, 2.5), noise=(30.0, 30.0), module_px=(4.0, 6.0)),
    "noise130": SceneConfig(noise=(130.0, 130.0), blur=(0.0, 0.1), module_px=(4.0, 6.0)),
}

_WORDS = ("TICKET", "Table 12", "www.example.com", "QR", "Scan me", "No. 4711", "EXIT", "Order")
_FOREIGN = ("HELLO", "https://example.com/a", "Table 7", "12345", "1234567", "ABCDEF",
            "https://example.org/menu?item=42&lang=en", "WIFI:S:home;T:WPA;P:secret;;")


@lru_cache(maxsize=1)
def held_out_sample() -> np.ndarray:
    """Held-out six-digit numbers that scenes draw from: the first 20,000 (a scan that stops there)."""
    from livereader.train.data import is_held_out

    return np.fromiter((n for n in range(10**6) if is_held_out("%06d" % n)), np.int64, count=20_000)


def _code_image(grid: np.ndarray) -> np.ndarray:
    """(21+2q) modules square, 0 = dark ink, 255 = paper, _SOURCE_PX px per module."""
    padded = np.pad(1 - grid, QUIET, constant_values=1).astype(np.uint8) * 255
    return cv2.resize(padded, None, fx=_SOURCE_PX, fy=_SOURCE_PX, interpolation=cv2.INTER_NEAREST)


def _pose(rng: np.random.Generator, centre: np.ndarray, module_px: float, tilt_deg: float) -> np.ndarray:
    """Homography from module coordinates (symbol tl = (0, 0)) to frame pixels: a plane tilted in 3D."""
    roll = rng.uniform(0, 2 * np.pi)
    tilt = np.deg2rad(tilt_deg)
    axis = rng.uniform(0, 2 * np.pi)  # direction of the tilt axis in the code's plane
    distance = 40.0  # camera distance in modules: strong tilts show real perspective
    rotation, _ = cv2.Rodrigues(np.array([np.cos(axis), np.sin(axis), 0.0]) * tilt)
    c, s = np.cos(roll), np.sin(roll)
    rotation = rotation @ np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])
    plane = np.array([[0, 0], [SIZE, 0], [SIZE, SIZE], [0, SIZE]], dtype=np.float64) - SIZE / 2
    points = np.c_[plane, np.zeros(4)] @ rotation.T + [0, 0, distance]
    image = points[:, :2] / points[:, 2:] * distance * module_px + centre
    return cv2.getPerspectiveTransform(plane.astype(np.float32) + SIZE / 2, image.astype(np.float32))


def _place(frame: np.ndarray, grid: np.ndarray, homography: np.ndarray, inverted: bool, mirrored: bool) -> np.ndarray:
    """Draw the code into the grey float frame; returns its tl, tr, br, bl symbol corners in pixels."""
    source = _code_image(grid[:, ::-1] if mirrored else grid)
    # source pixel centre i lies at module coordinate (i + 0.5) / _SOURCE_PX - QUIET
    to_module = np.array([[1, 0, 0.5 - QUIET * _SOURCE_PX], [0, 1, 0.5 - QUIET * _SOURCE_PX],
                          [0, 0, _SOURCE_PX]], dtype=np.float64)
    to_frame = homography @ to_module
    scale = np.sqrt(abs(np.linalg.det(to_frame[:2, :2]))) / to_frame[2, 2]  # frame px per source px, roughly
    if scale < 0.7:  # anti-alias before shrinking
        source = cv2.GaussianBlur(source, (0, 0), 0.45 / scale)
    h, w = frame.shape
    ink = cv2.warpPerspective(source.astype(np.float32), to_frame, (w, h), flags=cv2.INTER_LINEAR)
    cover = cv2.warpPerspective(np.ones(source.shape, np.float32), to_frame, (w, h), flags=cv2.INTER_LINEAR)
    if inverted:
        ink = cover * 255 - ink
    frame *= 1 - cover
    frame += ink
    corners = np.array([[0, 0], [SIZE, 0], [SIZE, SIZE], [0, SIZE]], dtype=np.float64)
    if mirrored:  # the symbol's own tl is the drawn grid's top-right corner, and so on
        corners = corners[[1, 0, 3, 2]]
    return cv2.perspectiveTransform(corners[None], homography)[0]


def _clutter(frame: np.ndarray, rng: np.random.Generator, count: int) -> None:
    h, w = frame.shape
    for _ in range(count):
        grey = float(rng.uniform(0, 255))
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        kind = rng.integers(4)
        if kind == 0:
            cv2.rectangle(frame, (x, y), (x + int(rng.integers(10, 120)), y + int(rng.integers(10, 120))), grey, -1)
        elif kind == 1:
            cv2.circle(frame, (x, y), int(rng.integers(5, 60)), grey, int(rng.choice([-1, 2, 5])))
        elif kind == 2:
            cv2.line(frame, (x, y), (int(rng.integers(0, w)), int(rng.integers(0, h))), grey, int(rng.integers(1, 6)))
        else:
            cv2.putText(frame, str(rng.choice(_WORDS)), (x, y), cv2.FONT_HERSHEY_SIMPLEX, float(rng.uniform(0.4, 1.5)),
                        grey, int(rng.integers(1, 4)))


def _free_centre(rng: np.random.Generator, size: tuple[int, int], radius: float,
                 taken: list[tuple[np.ndarray, float]]) -> np.ndarray | None:
    w, h = size
    for _ in range(50):
        centre = rng.uniform([radius, radius], [w - radius, h - radius]) if w > 2 * radius and h > 2 * radius else None
        if centre is None:
            return None
        if all(np.hypot(*(centre - c)) > radius + r for c, r in taken):
            return centre
    return None


def _degrade(frame: np.ndarray, config: SceneConfig, rng: np.random.Generator, module_px: float) -> np.ndarray:
    """Camera effects on the grey float frame -> BGR uint8 frame."""
    h, w = frame.shape
    sigma = rng.uniform(*config.blur) * module_px
    if sigma > 0.2:
        frame = cv2.GaussianBlur(frame, (0, 0), sigma)
    length = rng.uniform(*config.motion) * module_px
    if length >= 1:
        kernel: np.ndarray = np.zeros((int(length) | 1, int(length) | 1), np.float32)
        kernel[len(kernel) // 2] = 1
        rotate = cv2.getRotationMatrix2D((len(kernel) / 2 - 0.5, len(kernel) / 2 - 0.5), rng.uniform(0, 180), 1)
        kernel = cv2.warpAffine(kernel, rotate, kernel.shape)
        frame = cv2.filter2D(frame, -1, kernel / kernel.sum())
    low = rng.uniform(0, 1 - config.contrast[1]) * 255 if config.contrast[1] < 1 else 0.0
    span = rng.uniform(*config.contrast)
    frame = low + frame * span
    ramp = rng.uniform(-config.gradient, config.gradient, 2) * 255
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    frame = frame + ramp[0] * (xx / w - 0.5) + ramp[1] * (yy / h - 0.5)
    if config.shadow:
        a, b = rng.uniform([0, 0], [w, h], (2, 2))
        side = (xx - a[0]) * (b[1] - a[1]) - (yy - a[1]) * (b[0] - a[0]) > 0
        frame = np.where(side, frame * rng.uniform(0.35, 0.6), frame)
    frame = frame + rng.normal(0, rng.uniform(*config.noise), frame.shape)
    frame = np.clip(frame, 0, 255).astype(np.uint8)
    tint = rng.uniform(0.85, 1.0, 3)
    bgr: np.ndarray = np.clip(frame[..., None] * tint, 0, 255).astype(np.uint8)
    if config.jpeg[1] > 0:
        _, data = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(*config.jpeg, endpoint=True))])
        decoded = cv2.imdecode(data, cv2.IMREAD_COLOR)
        assert decoded is not None  # the JPEG just encoded
        bgr = decoded
    return bgr


def render_scene(category: str, rng: np.random.Generator, size: tuple[int, int] = (640, 480),
                 config: SceneConfig | None = None) -> Scene:
    """One frame of ``category`` (a key of ``CATEGORIES``) at ``size`` = (width, height)."""
    config = config or CATEGORIES[category]
    w, h = size
    paper = np.full((h, w), int(rng.uniform(150, 255)), np.uint8)
    _clutter(paper, rng, int(rng.integers(*config.clutter, endpoint=True)))
    frame = paper.astype(np.float32)
    numbers = held_out_sample()
    codes: list[TruthCode] = []
    taken: list[tuple[np.ndarray, float]] = []  # centres and radii of the codes placed
    first_module = None
    placements = [True] * int(rng.integers(*config.codes, endpoint=True))
    placements += [False] * int(rng.integers(*config.foreign, endpoint=True))
    for supported in placements:
        module_px = rng.uniform(*config.module_px)
        if supported and config.numeric:
            from livereader.train.data import numeric_payloads

            payloads, levels = numeric_payloads(1, rng, held_out=True)
            text, grid = payloads[0], encode(payloads[0], LEVELS[levels[0]])
        elif supported:
            text = "%06d" % rng.choice(numbers)
            grid = encode(text, "H")
        else:
            text = str(rng.choice(_FOREIGN))
            grid = _foreign_grid(text)
        radius = (len(grid) / 2 + QUIET) * module_px * 1.45
        centre = _free_centre(rng, size, radius, taken)
        if centre is None:
            continue
        taken.append((centre, radius))
        pose = _pose(rng, centre, module_px * len(grid) / SIZE, rng.uniform(*config.tilt))
        if len(grid) != SIZE:  # the pose maps a 21-module square; scale other sizes into module units
            pose = pose @ np.diag([SIZE / len(grid), SIZE / len(grid), 1])
        corners = _place(frame, grid, pose, config.inverted, config.mirrored and supported)
        first_module = first_module or module_px
        codes.append(TruthCode(text, tuple(map(tuple, corners.round(2).tolist())), supported, module_px))
    image = _degrade(frame, config, rng, first_module or config.module_px[0])
    return Scene(image, tuple(codes), category)


def _foreign_grid(text: str) -> np.ndarray:
    """A code that livereader must not report: text or short/long numbers, any version, level M."""
    import qrcode

    code = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_M, border=0)
    code.add_data(text)
    code.make(fit=True)
    return np.array(code.modules, dtype=np.uint8)


def scenes(categories: list[str], per_category: int, seed: int = 0,
           size: tuple[int, int] = (640, 480)) -> Iterator[Scene]:
    """``per_category`` frames of each category, reproducible from ``seed``."""
    for index, category in enumerate(categories):
        rng = np.random.default_rng([seed, index, size[0]])
        for _ in range(per_category):
            yield render_scene(category, rng, size)


@dataclass
class DemoStream:
    """An endless stream of frames with moving, tilting codes whose numbers change every ``hold`` frames."""

    size: tuple[int, int] = (640, 480)
    seed: int = 0
    hold: int = 45
    codes: int = 2
    _frame: int = field(default=0, init=False)

    def next(self) -> Scene:
        rng = np.random.default_rng([self.seed, self._frame // self.hold])
        t = self._frame * 2 * np.pi / 240
        w, h = self.size
        paper = np.full((h, w), 225, np.uint8)
        _clutter(paper, np.random.default_rng(self.seed), 6)
        frame = paper.astype(np.float32)
        truth = []
        for i in range(self.codes):
            text = "%06d" % rng.integers(10**6)
            phase = t + i * np.pi
            centre = np.array([w * (0.5 + 0.28 * np.cos(phase)), h * (0.5 + 0.25 * np.sin(2 * phase))])
            pose_rng = np.random.default_rng([self.seed, i])  # fixed roll and tilt axis per code
            module = min(w, h) / 80 * (1 + 0.3 * np.sin(phase * 1.7))
            pose = _pose(pose_rng, centre, module, 35 * abs(np.sin(phase * 0.8)))
            corners = _place(frame, encode(text, "H"), pose, inverted=False, mirrored=False)
            truth.append(TruthCode(text, tuple(map(tuple, corners.round(2).tolist())), True, module))
        config = replace(CATEGORIES["clean"], noise=(3.0, 6.0))
        self._frame += 1
        return Scene(_degrade(frame, config, rng, 5.0), tuple(truth), "demo")


@dataclass(frozen=True, eq=False)
class VirtualCamera:
    """A pinhole camera with OpenCV's lens distortion model, for frames with known intrinsics: ``camera_matrix``
    (3x3, pixels), ``distortion`` (k1 k2 p1 p2 k3; k1 < 0 barrel, k1 > 0 pincushion), ``size`` (width, height)."""

    camera_matrix: np.ndarray
    distortion: np.ndarray
    size: tuple[int, int]

    def distort(self, image: np.ndarray) -> np.ndarray:
        """An ideal (pinhole) frame as the lens images it. The ideal frame may extend the camera's frame by a
        margin on every side (a barrel lens sees beyond the pinhole frame's edges: ``margin()``)."""
        source_x, source_y = _ideal_pixels(self)
        pad_x, pad_y = (image.shape[1] - self.size[0]) / 2, (image.shape[0] - self.size[1]) / 2
        return cv2.remap(image, source_x + np.float32(pad_x), source_y + np.float32(pad_y), cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REPLICATE)

    def margin(self) -> int:
        """Pixels by which the ideal frame must extend the camera's frame on every side to fill the lens's view."""
        source_x, source_y = _ideal_pixels(self)
        w, h = self.size
        return int(np.ceil(max(0, -source_x.min(), -source_y.min(), source_x.max() - w, source_y.max() - h))) + 1

    def project(self, points: np.ndarray, rvec: np.ndarray, tvec: np.ndarray) -> np.ndarray:
        """(N, 3) world points -> (N, 2) pixels through the lens."""
        pixels, _ = cv2.projectPoints(points.astype(np.float64), rvec, tvec, self.camera_matrix, self.distortion)
        return pixels.reshape(-1, 2)


# A 640x480 wide-angle webcam with strong barrel distortion: the demo of ``livereader-calibrate`` and the lens
# of the distorted scenes.
DEMO_CAMERA = VirtualCamera(np.array([[300.0, 0, 322.0], [0, 298.0, 236.0], [0, 0, 1]]),
                            np.array([-0.5, 0.25, 0.0005, -0.0008, 0.0]), (640, 480))
LENS_SCENE = SceneConfig(codes=(2, 2), module_px=(6.0, 9.0), tilt=(0.0, 30.0))  # two codes per distorted frame


def lens_scenes(count: int, seed: int = 0, camera: VirtualCamera = DEMO_CAMERA) -> Iterator[Scene]:
    """``count`` frames of ``LENS_SCENE`` seen through ``camera``'s lens. Truth corners stay where the ideal
    (undistorted) frame has them: where an undistorted frame shows the codes."""
    rng = np.random.default_rng([seed, 7])
    for _ in range(count):
        scene = render_scene("clean", rng, camera.size, LENS_SCENE)
        yield replace(scene, image=camera.distort(scene.image), category="lens")


@lru_cache(maxsize=4)
def _ideal_pixels(camera: VirtualCamera) -> tuple[np.ndarray, np.ndarray]:
    """For every pixel of the distorted frame, the ideal frame's pixel it shows (float32 maps for cv2.remap)."""
    w, h = camera.size
    grid = np.stack(np.meshgrid(np.arange(w), np.arange(h)), -1).reshape(-1, 1, 2).astype(np.float64)
    criteria = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 40, 1e-6)  # the default 5 steps fall short
    ideal = cv2.undistortPoints(grid, camera.camera_matrix, camera.distortion, None, None, camera.camera_matrix,
                                criteria)
    ideal = ideal.reshape(h, w, 2).astype(np.float32)
    return ideal[..., 0], ideal[..., 1]


def chessboard_views(board: tuple[int, int], camera: VirtualCamera, count: int, seed: int = 0) -> Iterator[np.ndarray]:
    """``count`` grey frames of a chessboard with ``board`` = (columns, rows) inner corners, in random poses
    (tilted up to ~40 degrees, anywhere in the frame, the whole board visible) through ``camera``'s lens."""
    rng = np.random.default_rng(seed)
    square = 32  # texture pixels per square
    cols, rows = board[0] + 1, board[1] + 1  # squares
    texture = np.kron((np.add.outer(np.arange(rows + 2), np.arange(cols + 2)) % 2) * 255, np.ones((square, square)))
    texture[:square], texture[-square:], texture[:, :square], texture[:, -square:] = 255, 255, 255, 255  # margin
    texture = texture.astype(np.uint8)
    to_world = np.array([[1 / square, 0, -1.0], [0, 1 / square, -1.0], [0, 0, 1]])  # texture px -> board squares
    outline = np.array([[-1, -1, 0], [cols + 1, -1, 0], [cols + 1, rows + 1, 0], [-1, rows + 1, 0]], np.float64)
    w, h = camera.size
    pad = camera.margin()
    made = 0
    while made < count:
        axis = rng.normal(size=3) * [1, 1, 0.3]
        rvec = axis / np.linalg.norm(axis) * np.deg2rad(rng.uniform(10, 40))
        rotation, _ = cv2.Rodrigues(rvec)
        depth = camera.camera_matrix[0, 0] * (cols + 2) / (w * rng.uniform(0.45, 0.75))
        target = np.array([rng.uniform(0.2, 0.8) * w, rng.uniform(0.2, 0.8) * h])
        ray = np.linalg.inv(camera.camera_matrix) @ np.array([*target, 1.0])
        tvec = ray * depth - rotation @ np.array([cols / 2, rows / 2, 0])
        corners = camera.project(outline, rvec, tvec)
        if corners.min() < 8 or (corners[:, 0] > w - 8).any() or (corners[:, 1] > h - 8).any():
            continue  # part of the board is outside the frame
        shift = np.array([[1, 0, pad], [0, 1, pad], [0, 0, 1]])
        homography = shift @ camera.camera_matrix @ np.c_[rotation[:, :2], tvec] @ to_world
        ideal = cv2.warpPerspective(texture, homography, (w + 2 * pad, h + 2 * pad), flags=cv2.INTER_AREA,
                                    borderValue=110)
        frame = camera.distort(ideal).astype(np.float32) + rng.normal(0, 2.0, (h, w))
        made += 1
        yield np.clip(frame, 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class Clip:
    """Consecutive frames of the same codes moving and tilting; ``frames[t].codes[i]`` is code i in every frame."""

    frames: tuple[Scene, ...]
    category: str


def clip(config: SceneConfig, length: int, codes: int, rng: np.random.Generator, category: str = "clip",
         size: tuple[int, int] = (640, 480), camera: VirtualCamera | None = None) -> Clip:
    """``length`` frames of ``codes`` (1-4) held-out codes, each in its own quarter of the frame (modules made
    smaller where the category's would not fit), drifting up to 3 modules either way and tilting within
    ``config.tilt``, with independent camera noise in every frame; seen through ``camera``'s lens when given
    (its size then; truth corners stay those of the undistorted frame, as in :func:`lens_scenes`)."""
    w, h = size = camera.size if camera else size
    paper = np.full((h, w), int(rng.uniform(150, 255)), np.uint8)
    _clutter(paper, rng, int(rng.integers(*config.clutter, endpoint=True)))
    cells = [(0.5, 0.5)] if codes == 1 else [(0.25, 0.25), (0.75, 0.75), (0.75, 0.25), (0.25, 0.75)][:codes]
    cell = min(w, h) / (1 if codes == 1 else 2)
    largest = cell / ((SIZE + 2 * QUIET) * 1.42 + 6)  # tilted code, quiet zone and drift inside the cell
    numbers = held_out_sample()
    moving = []
    for cx, cy in cells:
        module_px = min(rng.uniform(*config.module_px), largest)
        moving.append(("%06d" % rng.choice(numbers), module_px, np.array([cx * w, cy * h]),
                       rng.uniform(-1, 1, 2) * 3 * module_px, rng.uniform(0, 2 * np.pi), int(rng.integers(1 << 30))))
    frames = []
    for t in range(length):
        phase = t / max(length - 1, 1)
        frame = paper.astype(np.float32)
        truth = []
        for text, module_px, centre, drift, start, pose_seed in moving:
            position = centre + drift * np.sin(np.pi * phase + start)
            tilt = config.tilt[0] + (config.tilt[1] - config.tilt[0]) * 0.5 * (1 + np.sin(2 * np.pi * phase + start))
            pose = _pose(np.random.default_rng(pose_seed), position, module_px, tilt)  # fixed roll and tilt axis
            corners = _place(frame, encode(text, "H"), pose, config.inverted, mirrored=False)
            truth.append(TruthCode(text, tuple(map(tuple, corners.round(2).tolist())), True, module_px))
        image = _degrade(frame, config, rng, moving[0][1])
        frames.append(Scene(camera.distort(image) if camera else image, tuple(truth), category))
    return Clip(tuple(frames), category)


def noisy_clip(rng: np.random.Generator, length: int = 15, module_px: float = 4.0, dark: float = 60.0,
               light: float = 190.0, noise: float = 55.0, blur: float = 0.3, drift: float = 2.0,
               size: tuple[int, int] = (640, 480)) -> tuple[str, list[np.ndarray]]:
    """A held-out six-digit code drifting ``drift`` px a frame across ``length`` grey frames of ``size``, its
    modules ``module_px`` px (``dark`` on ``light``), blurred by a Gaussian of ``blur`` modules and under new
    Gaussian noise of sigma ``noise`` in every frame: a code that only some frames read alone (at the defaults,
    about 30% of them). Returns the code's text and the frames."""
    text = "%06d" % rng.choice(held_out_sample())
    symbol = light - (light - dark) * np.pad(encode(text, "H"), QUIET).astype(np.float32)
    code = cv2.resize(symbol, None, fx=module_px, fy=module_px, interpolation=cv2.INTER_NEAREST)
    width, height = size
    margin = 20 + length * drift
    start = rng.uniform([margin, margin], [width - code.shape[1] - margin, height - code.shape[0] - margin])
    angle = rng.uniform(0, 2 * np.pi)
    step = drift * np.array([np.cos(angle), np.sin(angle)])
    frames = []
    for t in range(length):
        x, y = start + t * step
        frame = cv2.warpAffine(code, np.array([[1, 0, x], [0, 1, y]], np.float32), size, borderValue=light)
        frame = cv2.GaussianBlur(frame, (0, 0), blur * module_px) + rng.normal(0, noise, (height, width))
        frames.append(np.clip(frame, 0, 255).astype(np.uint8))
    return text, frames
