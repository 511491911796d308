"""The demo's series of batches: each example's next batch continues where the last one
stopped, and the series starts again at its end."""

from __future__ import annotations

import itertools

import pytest

from compute.examples import EXAMPLES, abc_triples, keysearch, mandelbrot
from compute.submission import MAX_INPUT_BYTES


def test_the_mandelbrot_tour_halves_the_view_inside_the_last_one_at_each_level():
    level = mandelbrot.next_demo_inputs(None)
    assert level == mandelbrot.demo_inputs()
    for n in range(1, mandelbrot.ZOOM_LEVELS + 1):
        before, level = level[0], mandelbrot.next_demo_inputs(level[-1])
        after = level[0]
        assert mandelbrot.zoom_level(after) == n
        assert len(level) == len(mandelbrot.demo_inputs())
        width = after["re_max"] - after["re_min"]
        assert width == pytest.approx((before["re_max"] - before["re_min"]) / 2)
        assert before["re_min"] <= after["re_min"] < after["re_max"] <= before["re_max"]
        assert before["im_min"] <= after["im_min"] < after["im_max"] <= before["im_max"]
        assert before["max_iter"] < after["max_iter"] <= mandelbrot.MAX_ITER
        # Each tile is one the kernel accepts.
        assert all(mandelbrot.check_tile(tile) for tile in level)
    # The deepest level is still many float steps a pixel.
    dx = (after["re_max"] - after["re_min"]) / after["width"]
    assert dx > 100 * abs(mandelbrot.ZOOM_POINT[0]) * 2.0**-52
    # The point of the tour is in the middle of the picture by then.
    assert after["re_min"] < mandelbrot.ZOOM_POINT[0] < after["re_max"]
    assert after["im_min"] < mandelbrot.ZOOM_POINT[1] < after["im_max"]


def test_the_abc_search_moves_on_to_the_next_range_of_c():
    batch = abc_triples.next_demo_inputs(None)
    ranges = [batch]
    while batch[-1]["c_hi"] < abc_triples.MAX_C:
        batch = abc_triples.next_demo_inputs(batch[-1])
        ranges.append(batch)
    units = [unit for batch in ranges for unit in batch]
    assert units[0]["c_lo"] == 1
    assert all(a["c_hi"] == b["c_lo"] for a, b in itertools.pairwise(units))
    assert all(abc_triples.check_range(unit) for unit in units)
    assert len(ranges) == 3


def test_each_key_search_hides_its_key_in_its_own_range():
    last = keysearch.demo_inputs()[-1]
    for _ in range(3):
        inputs = keysearch.next_demo_inputs(last)
        start, stop = inputs[0]["start"], inputs[-1]["stop"]
        assert start == last["stop"]
        key = keysearch.demo_key(start)
        assert start <= key < stop
        assert keysearch.hash_key(keysearch.DEMO_PREFIX, key) == inputs[0]["target"]
        finder = next(i for i in inputs if i["start"] <= key < i["stop"])
        assert keysearch.run({**finder, "start": key - 5, "stop": key + 5})["found"] == key
        last = inputs[-1]


@pytest.mark.parametrize(
    ("series", "end"),
    [
        (abc_triples, {"c_lo": abc_triples.MAX_C - 1, "c_hi": abc_triples.MAX_C}),
        (
            keysearch,
            {
                "prefix": keysearch.DEMO_PREFIX,
                "target": "0" * 64,
                "start": keysearch.MAX_KEY - 1,
                "stop": keysearch.MAX_KEY,
            },
        ),
        (mandelbrot, mandelbrot.split_job(mandelbrot.zoom_job(mandelbrot.ZOOM_LEVELS))[-1]),
    ],
)
def test_each_series_starts_with_the_demo_inputs_and_again_after_its_end(series, end):
    assert series.next_demo_inputs(None) == series.demo_inputs()
    assert series.next_demo_inputs(end) == series.demo_inputs()


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_each_batch_of_a_series_has_a_name_and_small_inputs(name):
    example = EXAMPLES[name]
    inputs = example.next_demo_inputs(example.demo_inputs()[-1])
    assert 0 < len(example.demo_batch_name(inputs)) < 80
    assert all(len(str(i)) < MAX_INPUT_BYTES for i in inputs)
