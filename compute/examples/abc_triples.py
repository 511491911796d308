"""ABC triples (as ABC@Home): every abc-hit with c in a range.

An abc-hit is a triple of positive integers a < b with a + b = c, gcd(a, b) = 1 and
rad(abc) < c, where rad(n) is the product of the distinct primes dividing n. The input is
``{"c_lo": 1, "c_hi": 100000}`` (c_lo <= c < c_hi); the output is ``{"hits": [[a, b, c,
rad(abc)], ...]}`` ordered by c, then a. Only integers cross the wire: the quality
log c / log rad(abc) is computed here, on the server, when someone asks for it.

The search: a, b and c are pairwise coprime, so rad(abc) = rad(a) rad(b) rad(c), and since
b >= 2, rad(b) >= 2. A hit therefore needs rad(a) rad(b) <= (c - 1) // rad(c) and
2 rad(a) <= that bound. With the radicals of [1, c_hi) sieved and the candidate a sorted
by radical, each c looks only at the few a whose radical is small enough.
"""

from __future__ import annotations

from math import gcd, log
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from compute.models import Batch, WorkUnit

# The kernel keeps the radicals and an ordering of [1, c_hi) in typed arrays: 60 MB at most.
MAX_C = 10_000_000


def run(data: dict[str, Any]) -> dict[str, list[list[int]]]:
    c_lo, c_hi = check_range(data)
    rad = radicals(c_hi)
    # Candidates for a: a < c / 2 < c_hi / 2, by radical (ties by value, as in the kernel).
    by_radical = sorted(range(1, c_hi // 2 + 1), key=rad.__getitem__)
    hits = []
    for c in range(max(c_lo, 3), c_hi):
        bound = (c - 1) // rad[c]  # rad(a) * rad(b) may be at most this
        if bound < 2:
            continue
        found = []
        for a in by_radical:
            ra = rad[a]
            if 2 * ra > bound:
                break
            b = c - a
            if a < b and ra * rad[b] <= bound and gcd(a, b) == 1:
                found.append([a, b, c, ra * rad[b] * rad[c]])
        hits.extend(sorted(found))
    return {"hits": hits}


def check_range(data: dict[str, Any]) -> tuple[int, int]:
    c_lo, c_hi = data.get("c_lo"), data.get("c_hi")
    for value in (c_lo, c_hi):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError("c_lo and c_hi must be integers")
    if not 1 <= c_lo < c_hi <= MAX_C:
        raise ValueError(f"need 1 <= c_lo < c_hi <= {MAX_C}")
    return c_lo, c_hi


def radicals(n: int) -> list[int]:
    """rad(k) for 0 <= k < n (rad(0) is left at 1; nothing asks for it)."""
    rad = [1] * n
    for p in range(2, n):
        if rad[p] == 1:  # no smaller prime divides p
            rad[p::p] = [r * p for r in rad[p::p]]
    return rad


def split_job(c_lo: int, c_hi: int, step: int) -> list[dict[str, int]]:
    return [{"c_lo": lo, "c_hi": min(lo + step, c_hi)} for lo in range(c_lo, c_hi, step)]


DEMO_SPAN = 4_000_000
DEMO_STEP = 200_000


def demo_inputs() -> list[dict[str, int]]:
    # Every hit with c < 4,000,000 in 20 work units. A work unit sieves [1, c_hi), so later
    # ones cost more: 0.1-0.4 s in a browser, up to 25 s in the Python reference.
    return split_job(1, DEMO_SPAN, DEMO_STEP)


def next_demo_inputs(last: dict[str, int] | None) -> list[dict[str, int]]:
    """The demo's next range of c: the DEMO_SPAN values after ``last`` (a work unit's
    input), up to MAX_C (the kernel's memory bound), and from the start again after that."""
    if last is None or last["c_hi"] >= MAX_C:
        return demo_inputs()
    return split_job(last["c_hi"], min(last["c_hi"] + DEMO_SPAN, MAX_C), DEMO_STEP)


def demo_batch_name(inputs: list[dict[str, int]]) -> str:
    return f"c from {inputs[0]['c_lo']:,} to {inputs[-1]['c_hi']:,}"


def rad(n: int) -> int:
    """The radical by trial division, for checking a few numbers."""
    result, p = 1, 2
    while p * p <= n:
        if n % p == 0:
            result *= p
            while n % p == 0:
                n //= p
        p += 1
    return result * n if n > 1 else result


def check_hit(hit: list[int], c_lo: int, c_hi: int) -> None:
    a, b, c, r = hit
    if not (0 < a < b and a + b == c and c_lo <= c < c_hi):
        raise ValueError(f"{hit} is not a triple a < b, a + b = c in the range")
    # Coprime, so rad(abc) = rad(a) rad(b) rad(c): three small factorisations, not one of
    # a product near c^3.
    if gcd(a, b) != 1 or rad(a) * rad(b) * rad(c) != r or r >= c:
        raise ValueError(f"{hit} is not an abc-hit")


def assimilate(workunit: WorkUnit, output: dict[str, Any]) -> None:
    """Keep the hit list, after checking each hit: cheap, and an unreplicated result could
    otherwise put a false hit in the catalogue (a missing one cannot be seen here)."""
    from compute.assimilation import store_output

    c_lo, c_hi = check_range(workunit.input)
    for hit in output["hits"]:
        check_hit(hit, c_lo, c_hi)
    store_output(workunit, output)


def quality(hit: list[int]) -> float:
    c, r = hit[2], hit[3]
    return log(c) / log(r)


def list_hits(batch: Batch) -> list[dict[str, Any]]:
    """The batch's hits so far, best quality first."""
    hits = [
        {"a": h[0], "b": h[1], "c": h[2], "rad": h[3], "quality": quality(h)}
        for out in batch.outputs.only("output")
        for h in out.output["hits"]
    ]
    hits.sort(key=lambda h: (-h["quality"], h["c"], h["a"]))
    return hits
