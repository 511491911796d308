"""Three example apps, each a Python reference, a browser kernel, an assimilator and a way to
split a job into work unit inputs:

- ``mandelbrot``: tiles of a Mandelbrot image; the kernel uses a WebAssembly module when
  the worker supplies one and plain JavaScript otherwise.
- ``abc_triples``: every abc-hit with c in a range (as ABC@Home).
- ``keysearch``: a brute-force search for the key behind a SHA-256 hash; the work unit that
  finds it cancels the rest of its batch.

``EXAMPLES`` describes them for whoever creates the App and AppVersion rows, and the demo's
endless series of batches: ``next_demo_inputs(last)`` continues from ``last`` (an input of
the previous batch; None for the first), ``demo_batch_name`` names a batch of it. Kernel contract:
an ES module exporting ``async run(input, progress, env)``; ``await progress(fraction)``
reports 0..1 (the worker may sleep inside it to honour the volunteer's CPU share);
``env.wasm`` is the app version's WebAssembly binary compiled to a ``WebAssembly.Module``
(or null); the result is JSON equal to the Python reference's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from compute.examples import abc_triples, keysearch, mandelbrot

HERE = Path(__file__).resolve().parent


@dataclass(frozen=True)
class ExampleApp:
    name: str
    title: str
    description: str
    reference_path: str
    assimilator_path: str
    kernel_path: Path
    demo_inputs: Callable[[], list[dict[str, Any]]]
    next_demo_inputs: Callable[[dict[str, Any] | None], list[dict[str, Any]]]
    demo_batch_name: Callable[[list[dict[str, Any]]], str]
    wasm_path: Path | None = None
    comparator: str = "exact"

    def kernel_source(self) -> str:
        return self.kernel_path.read_text(encoding="utf-8")

    def wasm_bytes(self) -> bytes | None:
        return self.wasm_path.read_bytes() if self.wasm_path else None


EXAMPLES: dict[str, ExampleApp] = {
    app.name: app
    for app in [
        ExampleApp(
            name="mandelbrot",
            title="Mandelbrot tiles",
            description=(
                "Escape counts for tiles of a Mandelbrot image of the seahorse valley, "
                "computed in WebAssembly when the browser has it; the picture fills in as "
                "tiles come back."
            ),
            reference_path="compute.examples.mandelbrot.run",
            assimilator_path="compute.examples.mandelbrot.assimilate",
            kernel_path=HERE / "kernels" / "mandelbrot.js",
            wasm_path=HERE / "wasm" / "mandelbrot.wasm",
            demo_inputs=mandelbrot.demo_inputs,
            next_demo_inputs=mandelbrot.next_demo_inputs,
            demo_batch_name=mandelbrot.demo_batch_name,
        ),
        ExampleApp(
            name="abc-triples",
            title="ABC triples",
            description=(
                "Every abc-hit (a + b = c, coprime, rad(abc) < c) with c below ten million, "
                "in ranges of c, as ABC@Home searched them."
            ),
            reference_path="compute.examples.abc_triples.run",
            assimilator_path="compute.examples.abc_triples.assimilate",
            kernel_path=HERE / "kernels" / "abc_triples.js",
            demo_inputs=abc_triples.demo_inputs,
            next_demo_inputs=abc_triples.next_demo_inputs,
            demo_batch_name=abc_triples.demo_batch_name,
        ),
        ExampleApp(
            name="keysearch",
            title="Key search",
            description=(
                "A brute-force search for the number behind a SHA-256 hash, in ranges of "
                "two million keys; the search stops when a volunteer finds it."
            ),
            reference_path="compute.examples.keysearch.run",
            assimilator_path="compute.examples.keysearch.assimilate",
            kernel_path=HERE / "kernels" / "keysearch.js",
            demo_inputs=keysearch.demo_inputs,
            next_demo_inputs=keysearch.next_demo_inputs,
            demo_batch_name=keysearch.demo_batch_name,
        ),
    ]
}
