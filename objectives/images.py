"""PNG artifacts drawn with Pillow (imported on first use; it ships with the [tf] extra).

Shapes: an image batch is (n, h, w) or (n, h, w, c) with c in {1, 3} and values in [0, 1];
a label map is (h, w) of ints in [0, num_classes).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

COLORS = [
    (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189),
    (140, 86, 75), (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207),
]


def palette(num_classes: int) -> np.ndarray:
    """(num_classes, 3) uint8 colours; class 0 (background) is black."""
    rows = [(0, 0, 0)] + [COLORS[i % len(COLORS)] for i in range(num_classes - 1)]
    return np.array(rows[:num_classes], dtype=np.uint8)


def to_uint8_rgb(images: np.ndarray) -> np.ndarray:
    """(n, h, w[, c]) floats in [0, 1] -> (n, h, w, 3) uint8."""
    arr = np.asarray(images, dtype=np.float32)
    if arr.ndim == 3:
        arr = arr[..., None]
    if arr.shape[-1] == 1:
        arr = np.repeat(arr, 3, axis=-1)
    return (np.clip(arr, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


def save_grid(path: Path, images: np.ndarray, *, cols: int | None = None, scale: int = 2) -> None:
    """Tiles `images` row by row (1-pixel gaps) into one PNG, each enlarged `scale` times."""
    from PIL import Image

    tiles = to_uint8_rgb(images)
    n, h, w, _ = tiles.shape
    cols = cols or math.ceil(math.sqrt(n))
    rows = math.ceil(n / cols)
    canvas = np.full((rows * (h + 1) + 1, cols * (w + 1) + 1, 3), 64, dtype=np.uint8)
    for i in range(n):
        r, c = divmod(i, cols)
        top, left = 1 + r * (h + 1), 1 + c * (w + 1)
        canvas[top: top + h, left: left + w] = tiles[i]
    img = Image.fromarray(canvas)
    if scale > 1:
        img = img.resize((img.width * scale, img.height * scale), Image.Resampling.NEAREST)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)


def overlay(
    images: np.ndarray, labels: np.ndarray, num_classes: int, alpha: float = 0.5
) -> np.ndarray:
    """Blends class colours over images: (n, h, w[, c]), (n, h, w) -> (n, h, w, 3) in [0, 1]."""
    base = to_uint8_rgb(images).astype(np.float32) / 255.0
    colours = palette(num_classes).astype(np.float32) / 255.0
    lab = np.clip(np.asarray(labels, dtype=np.int64), 0, num_classes - 1)
    painted = colours[lab]
    mask = (lab > 0)[..., None]
    return np.where(mask, (1 - alpha) * base + alpha * painted, base)


def save_curves(
    path: Path,
    series: Mapping[str, Sequence[float]],
    *,
    title: str = "",
    size: tuple[int, int] = (640, 400),
) -> None:
    """Draws each series against its index (epoch 1, 2, ...) with a legend and y-range labels.

    Non-finite points are skipped. Writes nothing when there is no finite point.
    """
    from PIL import Image, ImageDraw

    finite = [v for s in series.values() for v in s if math.isfinite(v)]
    if not finite:
        return
    width, height = size
    left, right, top, bottom = 70, 20, 30, 40
    lo, hi = min(finite), max(finite)
    if hi - lo < 1e-12:
        lo, hi = lo - 0.5, hi + 0.5
    n = max(len(s) for s in series.values())
    img = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(img)
    x0, x1, y0, y1 = left, width - right, height - bottom, top
    draw.rectangle([x0, y1, x1, y0], outline="black")
    draw.text((5, y1 - 5), f"{hi:.4g}", fill="black")
    draw.text((5, y0 - 10), f"{lo:.4g}", fill="black")
    draw.text((x0, y0 + 8), "1", fill="black")
    draw.text((x1 - 30, y0 + 8), f"{n} (epoch)", fill="black")
    draw.text((x0, 8), title, fill="black")

    def xy(i: int, v: float) -> tuple[float, float]:
        fx = 0.5 if n == 1 else i / (n - 1)
        return x0 + fx * (x1 - x0), y0 - (v - lo) / (hi - lo) * (y0 - y1)

    for k, (name, values) in enumerate(series.items()):
        colour = COLORS[k % len(COLORS)]
        points = [xy(i, v) for i, v in enumerate(values) if math.isfinite(v)]
        if len(points) > 1:
            draw.line(points, fill=colour, width=2)
        for px, py in points:
            draw.ellipse([px - 2, py - 2, px + 2, py + 2], fill=colour)
        draw.text((x1 - 180, y1 + 5 + 14 * k), name, fill=colour)
    path.parent.mkdir(parents=True, exist_ok=True)
    img.save(path)
