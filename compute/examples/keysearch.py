"""Key search: a brute-force search of a numeric key space against a known SHA-256 hash.

The secret is an integer k in [0, keyspace). What is known is a prefix and the hash
``sha256(utf8(prefix + str(k)))`` as 64 lowercase hex digits; ``str(k)`` is plain decimal
(no sign, no leading zeros). A work unit searches ``[start, stop)``::

    {"prefix": "socialgrid:", "target": "9f86...", "start": 0, "stop": 1000000}

and answers ``{"found": k or None, "checked": n}``, stopping at the first match, so
``checked`` is ``k - start + 1`` when found and ``stop - start`` when not. Keys stay below
10^15 so that the browser's numbers hold them exactly.

When a work unit finds the key, its assimilator cancels the rest of the batch's work units.
"""

from __future__ import annotations

import hashlib
import logging
import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from compute.models import Batch, WorkUnit

log = logging.getLogger(__name__)

MAX_KEY = 10**15
_HEX = re.compile(r"[0-9a-f]{64}")


def run(data: dict[str, Any]) -> dict[str, int | None]:
    prefix, target, start, stop = check_input(data)
    head = prefix.encode("utf-8")
    goal = bytes.fromhex(target)
    sha256 = hashlib.sha256
    for k in range(start, stop):
        if sha256(b"%s%d" % (head, k)).digest() == goal:
            return {"found": k, "checked": k - start + 1}
    return {"found": None, "checked": stop - start}


def check_input(data: dict[str, Any]) -> tuple[str, str, int, int]:
    prefix, target = data.get("prefix"), data.get("target")
    start, stop = data.get("start"), data.get("stop")
    if not isinstance(prefix, str):
        raise ValueError("prefix must be a string")
    if not isinstance(target, str) or not _HEX.fullmatch(target):
        raise ValueError("target must be 64 lowercase hex digits")
    for value in (start, stop):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError("start and stop must be integers")
    if not 0 <= start < stop <= MAX_KEY:
        raise ValueError(f"need 0 <= start < stop <= {MAX_KEY}")
    return prefix, target, start, stop


def hash_key(prefix: str, key: int) -> str:
    return hashlib.sha256(f"{prefix}{key}".encode()).hexdigest()


def split_job(prefix: str, target: str, keyspace: int, step: int) -> list[dict[str, Any]]:
    return [
        {"prefix": prefix, "target": target, "start": lo, "stop": min(lo + step, keyspace)}
        for lo in range(0, keyspace, step)
    ]


# The demo's key sits in the 30th of 40 work units of two million keys (about 0.7 s each
# in a browser, 0.8 s in the Python reference), so whoever watches sees the batch stop
# early. It is no secret: the demo is about the search, not the key.
DEMO_PREFIX = "socialgrid:"
DEMO_KEY = 58_721_462
DEMO_KEYSPACE = 80_000_000
DEMO_STEP = 2_000_000


def demo_inputs() -> list[dict[str, Any]]:
    return split_job(DEMO_PREFIX, hash_key(DEMO_PREFIX, DEMO_KEY), DEMO_KEYSPACE, DEMO_STEP)


def demo_key(start: int) -> int:
    """The key hidden in the demo range that starts at ``start``: DEMO_KEY in the first,
    and in each later one a key in its second half, drawn from the start's own hash."""
    if start == 0:
        return DEMO_KEY
    half = DEMO_KEYSPACE // 2
    return start + half + int(hash_key(DEMO_PREFIX, start)[:12], 16) % half


def next_demo_inputs(last: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The demo's next search: the DEMO_KEYSPACE keys after the range ``last`` (a work
    unit's input) belongs to, for a new key hidden in them; from 0 again at MAX_KEY."""
    start = 0 if last is None else _range_start(last["start"]) + DEMO_KEYSPACE
    if start + DEMO_KEYSPACE > MAX_KEY:
        start = 0
    target = hash_key(DEMO_PREFIX, demo_key(start))
    return [
        {**unit, "start": unit["start"] + start, "stop": unit["stop"] + start}
        for unit in split_job(DEMO_PREFIX, target, DEMO_KEYSPACE, DEMO_STEP)
    ]


def _range_start(key: int) -> int:
    return key - key % DEMO_KEYSPACE


def demo_batch_name(inputs: list[dict[str, Any]]) -> str:
    return f"keys {inputs[0]['start']:,} to {inputs[-1]['stop']:,}"


def assimilate(workunit: WorkUnit, output: dict[str, Any]) -> None:
    from compute.assimilation import store_output
    from compute.submission import cancel_workunits

    key = output.get("found")
    if key is None:
        store_output(workunit, output)
        return
    # Check the claim before acting on it: one hash, and a false "found" would cancel a
    # batch whose key is still out there.
    prefix, target, start, stop = check_input(workunit.input)
    if not (isinstance(key, int) and start <= key < stop and hash_key(prefix, key) == target):
        raise ValueError(f"{key!r} is not the key")
    store_output(workunit, output)
    log.info("work unit %s found the key %s", workunit.id, key)
    if workunit.batch_id:
        # The rest of the search is pointless: its work units are cancelled (hosts holding
        # them are told to stop) and the batch completes once they are counted.
        others = workunit.batch.workunits.exclude(id=workunit.id).values_list("id", flat=True)
        cancel_workunits(list(others))


def found_key(batch: Batch) -> int | None:
    """The key, once a work unit of the batch has found it."""
    for out in batch.outputs.only("output"):
        if out.output.get("found") is not None:
            return out.output["found"]
    return None
