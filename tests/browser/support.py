"""Small helpers of the browser level: waiting without blocking Playwright's event loop,
and reading the Mandelbrot picture."""

from __future__ import annotations

import asyncio
import struct
import time
import zlib
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from compute.examples.mandelbrot import GRID_LINE, PENDING

T = TypeVar("T")


NOT_COMPUTED = {PENDING, GRID_LINE}


def grey_share(png: bytes) -> float:
    """The share of the picture's pixels not computed yet (tiles not assimilated yet, drawn
    in compute.examples.mandelbrot's PENDING fill and GRID_LINE outline).

    Reads the 8-bit RGB PNG that compute.examples.mandelbrot.render_png writes (one IDAT,
    filter type 0 on every row)."""
    assert png.startswith(b"\x89PNG\r\n\x1a\n"), "not a PNG"
    width, height = struct.unpack(">II", png[16:24])
    data, at = b"", 8
    while at < len(png):
        length, kind = struct.unpack(">I4s", png[at : at + 8])
        if kind == b"IDAT":
            data += png[at + 8 : at + 8 + length]
        at += 12 + length
    rows = zlib.decompress(data)
    stride = 1 + 3 * width
    grey = 0
    for y in range(height):
        row = rows[y * stride + 1 : (y + 1) * stride]
        grey += sum(1 for x in range(0, 3 * width, 3) if row[x : x + 3] in NOT_COMPUTED)
    return grey / (width * height)


async def in_thread(function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """A blocking call (subprocess, HTTP) off the event loop Playwright runs on."""
    return await asyncio.to_thread(function, *args, **kwargs)


async def poll(
    check: Callable[[], Awaitable[T]], what: str, within: float = 60, every: float = 0.25
) -> T:
    """Wait until ``check()`` returns something true; fail saying ``what`` did not happen
    ``within`` seconds."""
    deadline = time.monotonic() + within
    last: T = await check()
    while not last:
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {within:.0f} s waiting for {what} ({last!r})")
        await asyncio.sleep(every)
        last = await check()
    return last
