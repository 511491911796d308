"""Mandelbrot tiles: an image of a region of the complex plane, one work unit per tile.

A work unit's input is the whole job's geometry plus its tile::

    {"re_min": -0.8, "re_max": -0.68, "im_min": 0.05, "im_max": 0.15,
     "width": 1200, "height": 1000, "max_iter": 2000,
     "x": 200, "y": 0, "w": 200, "h": 200}

Pixel (i, j) of the image is the point ``re_min + i*dx + (im_max - j*dy)i`` with
``dx = (re_max - re_min) / width`` and ``dy = (im_max - im_min) / height``; row 0 is the top.
The output is ``{"counts": base64}``: the tile's escape counts, row-major, as little-endian
uint16. A pixel's count is the first n with |z_n|^2 > 4 (z_0 = 0, z_n+1 = z_n^2 + c), or
max_iter if there is none. The JavaScript kernel and the C module (wasm/mandelbrot.c) do the
same double operations in the same order, so every replica agrees to the bit.
"""

from __future__ import annotations

import base64
import struct
import sys
import zlib
from array import array
from math import log
from typing import TYPE_CHECKING, Any

from compute.numbers import finite_float

if TYPE_CHECKING:
    from compute.models import Batch, WorkUnit

MAX_TILE_PIXELS = 512 * 512  # the C module's buffer
MAX_ITER = 65535  # counts are uint16
GEOMETRY = ("re_min", "re_max", "im_min", "im_max", "width", "height", "max_iter")


def run(data: dict[str, Any]) -> dict[str, str]:
    tile = check_tile(data)
    dx = (tile["re_max"] - tile["re_min"]) / tile["width"]
    dy = (tile["im_max"] - tile["im_min"]) / tile["height"]
    counts = array("H", bytes(2 * tile["w"] * tile["h"]))
    x, y, w, max_iter = tile["x"], tile["y"], tile["w"], tile["max_iter"]
    re_min, im_max = tile["re_min"], tile["im_max"]
    for row in range(tile["h"]):
        ci = im_max - float(y + row) * dy
        base = row * w
        for col in range(w):
            cr = re_min + float(x + col) * dx
            zr = zi = 0.0
            n = 0
            while n < max_iter:
                zr2 = zr * zr
                zi2 = zi * zi
                if zr2 + zi2 > 4.0:
                    break
                zi = 2.0 * zr * zi + ci
                zr = zr2 - zi2 + cr
                n += 1
            counts[base + col] = n
    return {"counts": encode_counts(counts)}


def check_tile(data: dict[str, Any]) -> dict[str, Any]:
    """The input with its numbers as float and int, or ValueError (the kernel's rules too)."""
    tile: dict[str, Any] = {}
    for key in ("re_min", "re_max", "im_min", "im_max"):
        value = finite_float(data.get(key))
        if value is None:
            raise ValueError(f"{key} must be a number")
        tile[key] = value
    for key in ("width", "height", "max_iter", "x", "y", "w", "h"):
        value = data.get(key)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{key} must be an integer")
        tile[key] = value
    if not (tile["re_min"] < tile["re_max"] and tile["im_min"] < tile["im_max"]):
        raise ValueError("the region is empty")
    if not 1 <= tile["max_iter"] <= MAX_ITER:
        raise ValueError(f"max_iter must be in 1..{MAX_ITER}")
    if tile["w"] < 1 or tile["h"] < 1 or tile["w"] * tile["h"] > MAX_TILE_PIXELS:
        raise ValueError(f"a tile has 1..{MAX_TILE_PIXELS} pixels")
    if tile["x"] < 0 or tile["x"] + tile["w"] > tile["width"]:
        raise ValueError("the tile is outside the image")
    if tile["y"] < 0 or tile["y"] + tile["h"] > tile["height"]:
        raise ValueError("the tile is outside the image")
    return tile


def encode_counts(counts: array) -> str:
    if sys.byteorder == "big":
        counts = array("H", counts)
        counts.byteswap()
    return base64.b64encode(counts.tobytes()).decode("ascii")


def decode_counts(text: str) -> array:
    raw = base64.b64decode(text, validate=True)
    if len(raw) % 2:
        raise ValueError("the counts are not whole uint16 values")
    counts = array("H", raw)
    if sys.byteorder == "big":
        counts.byteswap()
    return counts


def split_job(job: dict[str, Any], tile: int = 200) -> list[dict[str, Any]]:
    """One input per tile of ``tile`` x ``tile`` pixels (smaller at the right and bottom)."""
    geometry = {key: job[key] for key in GEOMETRY}
    return [
        {
            **geometry,
            "x": x,
            "y": y,
            "w": min(tile, job["width"] - x),
            "h": min(tile, job["height"] - y),
        }
        for y in range(0, job["height"], tile)
        for x in range(0, job["width"], tile)
    ]


# The "seahorse valley" between the main cardioid and the period-2 bulb, 30 tiles of
# 200 x 200. Most tiles hold part of the set (2000 iterations a pixel) and take about 0.2 s
# in a browser, with WebAssembly or without; the Python reference needs about 6 s.
DEMO_JOB = {
    "re_min": -0.80,
    "re_max": -0.68,
    "im_min": 0.05,
    "im_max": 0.15,
    "width": 1200,
    "height": 1000,
    "max_iter": 2000,
}


def demo_inputs() -> list[dict[str, Any]]:
    return split_job(DEMO_JOB)


# The demo's tour: each batch after the first halves the view around a point of the valley's
# boundary (whose detail never runs out), so the picture keeps changing. The centre moves
# onto the point faster than the view shrinks, which brings the point to the middle of the
# picture within a few levels. After ZOOM_LEVELS the tour starts again: at 2^30 a pixel is
# still hundreds of float steps wide, a few levels more and neighbouring pixels would merge.
ZOOM_POINT = (-0.743643887037151, 0.131825904205330)
ZOOM_LEVELS = 30
ZOOM_EXTRA_ITER = 500  # more iterations each level, for the finer detail


def zoom_job(level: int) -> dict[str, Any]:
    """The image of zoom level ``level`` (0 is DEMO_JOB)."""
    if level == 0:
        return dict(DEMO_JOB)
    scale = 0.5**level
    pull = scale * scale
    half_re = (DEMO_JOB["re_max"] - DEMO_JOB["re_min"]) / 2 * scale
    half_im = (DEMO_JOB["im_max"] - DEMO_JOB["im_min"]) / 2 * scale
    start_re = (DEMO_JOB["re_min"] + DEMO_JOB["re_max"]) / 2
    start_im = (DEMO_JOB["im_min"] + DEMO_JOB["im_max"]) / 2
    centre_re = ZOOM_POINT[0] + (start_re - ZOOM_POINT[0]) * pull
    centre_im = ZOOM_POINT[1] + (start_im - ZOOM_POINT[1]) * pull
    return {
        "re_min": centre_re - half_re,
        "re_max": centre_re + half_re,
        "im_min": centre_im - half_im,
        "im_max": centre_im + half_im,
        "width": DEMO_JOB["width"],
        "height": DEMO_JOB["height"],
        "max_iter": min(MAX_ITER, DEMO_JOB["max_iter"] + ZOOM_EXTRA_ITER * level),
    }


def zoom_level(tile: dict[str, Any]) -> int:
    """The zoom level of a tour image, from the width of its view."""
    ratio = (DEMO_JOB["re_max"] - DEMO_JOB["re_min"]) / (tile["re_max"] - tile["re_min"])
    return max(0, round(log(ratio, 2)))


def next_demo_inputs(last: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The tiles of the tour's next level after the one ``last`` (a tile) belongs to; the
    first level when there is none, and again after the deepest."""
    level = zoom_level(last) + 1 if last is not None else 0
    return split_job(zoom_job(level if level <= ZOOM_LEVELS else 0))


def demo_batch_name(inputs: list[dict[str, Any]]) -> str:
    return f"zoom level {zoom_level(inputs[0])}"


def assimilate(workunit: WorkUnit, output: dict[str, Any]) -> None:
    from compute.assimilation import store_output

    # Refuse a tile whose counts do not fill it: render_png would have to guess.
    tile = check_tile(workunit.input)
    if len(decode_counts(output["counts"])) != tile["w"] * tile["h"]:
        raise ValueError("the output does not have one count per pixel")
    store_output(workunit, output)


def render_png(batch: Batch) -> bytes:
    """The batch's image so far: assimilated tiles in colour; the others drawn as what they
    will be, pale tiles outlined in the grid of the batch's work units."""
    outputs = list(batch.outputs.only("input", "output"))
    tiles = list(batch.workunits.values_list("input", flat=True))
    first = outputs[0].input if outputs else tiles[0] if tiles else None
    geometry = first or {"width": 1, "height": 1}
    width, height = geometry["width"], geometry["height"]
    stride = 1 + 3 * width  # each PNG row starts with its filter type, 0 (none)
    image = bytearray((b"\x00" + PENDING * width) * height)
    for tile in tiles:
        if (tile.get("width"), tile.get("height")) == (width, height):
            _outline(image, stride, tile)
    palettes: dict[int, list[bytes]] = {}
    for out in outputs:
        tile = out.input
        if (tile["width"], tile["height"]) != (width, height):
            continue  # a tile of another image, submitted in the same batch
        if tile["max_iter"] not in palettes:
            palettes[tile["max_iter"]] = palette(tile["max_iter"])
        colours = palettes[tile["max_iter"]]
        counts = decode_counts(out.output["counts"])
        w = tile["w"]
        for j in range(tile["h"]):
            start = (tile["y"] + j) * stride + 1 + 3 * tile["x"]
            image[start : start + 3 * w] = b"".join(colours[c] for c in counts[j * w : (j + 1) * w])
    return encode_png(width, height, bytes(image))


# A tile not computed yet: a pale fill inside a darker outline, so the grid of work units
# shows from the start (tests/browser/support.py counts both as not yet computed).
PENDING = b"\xe4\xe8\xee"
GRID_LINE = b"\xa9\xb4\xc0"


def _outline(image: bytearray, stride: int, tile: dict[str, Any]) -> None:
    """Draw a tile's border (its top and left edges, and the image's right and bottom ones
    where the tile touches them) in GRID_LINE."""
    x, y, w, h = tile["x"], tile["y"], tile["w"], tile["h"]
    right_edge = (stride - 1) // 3 == x + w
    bottom_edge = (len(image) // stride) == y + h
    top = y * stride + 1 + 3 * x
    image[top : top + 3 * w] = GRID_LINE * w
    if bottom_edge:
        last = (y + h - 1) * stride + 1 + 3 * x
        image[last : last + 3 * w] = GRID_LINE * w
    for j in range(h):
        row = (y + j) * stride + 1
        image[row + 3 * x : row + 3 * x + 3] = GRID_LINE
        if right_edge:
            image[row + 3 * (x + w - 1) : row + 3 * (x + w)] = GRID_LINE


_STOPS = [(0, 7, 100), (32, 107, 203), (237, 255, 255), (255, 170, 0), (0, 2, 0)]


def palette(max_iter: int) -> list[bytes]:
    """An RGB triple per count: a gradient over log(n + 1) / log(max_iter + 1), and black for
    max_iter (inside the set).

    Only the server draws, so floating point is fine here."""
    colours = []
    for n in range(max_iter + 1):
        t = log(n + 1) / log(max_iter + 1) * (len(_STOPS) - 1)
        i = min(int(t), len(_STOPS) - 2)
        f = t - i
        a, b = _STOPS[i], _STOPS[i + 1]
        colours.append(bytes(round(a[k] + (b[k] - a[k]) * f) for k in range(3)))
    colours[max_iter] = b"\x00\x00\x00"
    return colours


def encode_png(width: int, height: int, scanlines: bytes) -> bytes:
    """An 8-bit RGB PNG from rows that already carry their filter byte."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"".join(
        [
            b"\x89PNG\r\n\x1a\n",
            chunk(b"IHDR", header),
            chunk(b"IDAT", zlib.compress(scanlines, 6)),
            chunk(b"IEND", b""),
        ]
    )
