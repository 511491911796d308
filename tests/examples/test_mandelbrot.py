from __future__ import annotations

import struct
import zlib

import pytest

from compute import submission
from compute.examples import mandelbrot
from compute.models import AssimilatedOutput

# Four pixels on the real axis, at -2, -1, 0 and 1.
AXIS = {
    "re_min": -2.0,
    "re_max": 2.0,
    "im_min": -1.0,
    "im_max": 0.0,
    "width": 4,
    "height": 1,
    "max_iter": 50,
    "x": 0,
    "y": 0,
    "w": 4,
    "h": 1,
}


def counts(data: dict) -> list[int]:
    return list(mandelbrot.decode_counts(mandelbrot.run(data)["counts"]))


def test_points_on_the_real_axis_have_their_known_escape_counts():
    # -2 and -1 stay bounded (2, 2, ... and 0, -1, 0, ...), 0 is fixed, and 1 runs
    # 0, 1, 2, 5: |5| > 2 after three steps.
    assert counts(AXIS) == [50, 50, 50, 3]


def test_a_point_far_outside_escapes_after_one_step():
    far = {**AXIS, "re_min": 3.0, "re_max": 4.0, "width": 1, "w": 1}
    assert counts(far) == [1]


def test_the_top_row_is_the_largest_imaginary_part():
    # i is in the set (0, i, -1+i, -i, -1+i, ...); 2i goes 0, 2i, -4+2i: out after two.
    column = {**AXIS, "re_min": 0.0, "re_max": 1.0, "im_min": 0.0, "im_max": 2.0}
    column.update(width=1, height=2, w=1, h=2)
    assert counts(column) == [2, 50]


def test_counts_are_little_endian_uint16_in_base64():
    output = mandelbrot.run({**AXIS, "max_iter": 300})
    assert output == {"counts": "LAEsASwBAwA="}  # 300 = 0x012c


@pytest.mark.parametrize(
    "change",
    [
        {"x": 1},
        {"w": 0},
        {"max_iter": 0},
        {"max_iter": 65536},
        {"re_max": -2.0},
        {"width": 4.0},
        {"re_min": float("inf")},
        {"re_min": -(10**400)},
        {"w": 600, "h": 600, "width": 600, "height": 600},
    ],
    ids=[
        "outside",
        "empty",
        "no-iterations",
        "over-uint16",
        "empty-region",
        "float-size",
        "infinite",
        "integer-beyond-a-double",
        "too-large",
    ],
)
def test_it_rejects_bad_tiles(change):
    with pytest.raises(ValueError):  # noqa: PT011 - any of several messages
        mandelbrot.run({**AXIS, **change})


def test_split_job_covers_every_pixel_once():
    job = {**mandelbrot.DEMO_JOB, "width": 450, "height": 210}
    covered = [0] * (450 * 210)
    for tile in mandelbrot.split_job(job, 200):
        mandelbrot.check_tile(tile)
        for y in range(tile["y"], tile["y"] + tile["h"]):
            for x in range(tile["x"], tile["x"] + tile["w"]):
                covered[y * 450 + x] += 1
    assert set(covered) == {1}


def test_the_demo_job_is_thirty_valid_tiles():
    inputs = mandelbrot.demo_inputs()
    assert len(inputs) == 30
    for tile in inputs:
        mandelbrot.check_tile(tile)


def read_png(data: bytes) -> tuple[int, int, list[bytes]]:
    """Width, height and RGB rows of an 8-bit RGB PNG with filter 0, checking each CRC."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    at, chunks = 8, {}
    while at < len(data):
        (length,) = struct.unpack(">I", data[at : at + 4])
        kind, body = data[at + 4 : at + 8], data[at + 8 : at + 8 + length]
        (crc,) = struct.unpack(">I", data[at + 8 + length : at + 12 + length])
        assert crc == zlib.crc32(kind + body)
        chunks[kind] = chunks.get(kind, b"") + body
        at += 12 + length
    assert kind == b"IEND"
    width, height, depth, colour, *_ = struct.unpack(">IIBBBBB", chunks[b"IHDR"])
    assert (depth, colour) == (8, 2)
    raw = zlib.decompress(chunks[b"IDAT"])
    stride = 1 + 3 * width
    assert len(raw) == stride * height
    assert all(raw[row * stride] == 0 for row in range(height))
    return width, height, [raw[row * stride + 1 : (row + 1) * stride] for row in range(height)]


@pytest.fixture
def app(project_factory):
    project = project_factory(
        app_kwargs={
            "name": "mandelbrot",
            "reference_path": "compute.examples.mandelbrot.run",
            "assimilator_path": "compute.examples.mandelbrot.assimilate",
        }
    )
    return project.apps.get()


JOB = {**mandelbrot.DEMO_JOB, "width": 30, "height": 20, "max_iter": 100}


@pytest.mark.django_db
def test_render_png_draws_assimilated_tiles_and_the_outline_of_the_rest(app):
    batch = submission.create_batch(app.project, app, mandelbrot.split_job(JOB, 16), name="m")
    workunits = list(batch.workunits.order_by("id"))
    assert len(workunits) == 4
    for wu in workunits[:3]:
        mandelbrot.assimilate(wu, mandelbrot.run(wu.input))
    assert AssimilatedOutput.objects.filter(batch=batch).count() == 3

    width, height, rows = read_png(mandelbrot.render_png(batch))
    assert (width, height) == (30, 20)
    colours = mandelbrot.palette(100)
    first = workunits[0].input  # the top-left tile, 16 x 16
    first_counts = mandelbrot.decode_counts(mandelbrot.run(first)["counts"])
    assert rows[0][:48] == b"".join(colours[c] for c in first_counts[:16])
    missing = workunits[3].input  # the bottom-right tile, 14 x 4
    assert (missing["x"], missing["y"]) == (16, 16)
    pending = {mandelbrot.PENDING, mandelbrot.GRID_LINE}
    for row in rows[16:]:
        assert {row[i : i + 3] for i in range(3 * 16, 3 * 30, 3)} <= pending
    assert rows[16][3 * 16 :] == mandelbrot.GRID_LINE * 14  # its top edge
    assert rows[18][3 * 20 : 3 * 21] == mandelbrot.PENDING  # inside it


@pytest.mark.django_db
def test_render_png_of_a_batch_with_nothing_back_shows_its_grid_of_tiles(app):
    """Not a flat block: what will appear, four tiles (16 x 16, 14 x 16, 16 x 4, 14 x 4)
    outlined, each filled in pale until its result is checked."""
    batch = submission.create_batch(app.project, app, mandelbrot.split_job(JOB, 16), name="m")
    width, height, rows = read_png(mandelbrot.render_png(batch))
    assert (width, height) == (30, 20)
    line, fill = mandelbrot.GRID_LINE, mandelbrot.PENDING

    def pixel(x: int, y: int) -> bytes:
        return rows[y][3 * x : 3 * x + 3]

    edges_x, edges_y = {0, 16, 29}, {0, 16, 19}
    for y in range(height):
        for x in range(width):
            on_grid = x in edges_x or y in edges_y
            assert pixel(x, y) == (line if on_grid else fill), (x, y)


@pytest.mark.django_db
def test_a_tile_with_the_wrong_number_of_counts_is_refused(app):
    batch = submission.create_batch(app.project, app, mandelbrot.split_job(JOB, 16), name="m")
    wu = batch.workunits.first()
    with pytest.raises(ValueError, match="one count per pixel"):
        mandelbrot.assimilate(wu, {"counts": "AAAAAA=="})
    with pytest.raises(ValueError, match="whole uint16"):
        mandelbrot.assimilate(wu, {"counts": "AAAA"})
    assert not AssimilatedOutput.objects.exists()
