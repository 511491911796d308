"""Credit as people read it: one rule for every page, the panel and the share texts.

Credit is cobblestones (200 per GFLOPS-day), so a task of a few seconds earns thousandths and
a busy volunteer thousands. From 100 up a figure is a whole number with thousands separators
(``12,345``); below 100 it keeps three significant digits (``12.3``, ``0.0163``), trailing
zeros dropped (``0.25``, ``2``), so a first result never reads ``0.0``. Rounding is half up on
the exact binary value, which is what the browser's ``Number.prototype.toFixed`` does, so
``static/socialgrid/volunteer.js``'s ``formatCredit`` writes the same text
(``tests/fixtures/credit_formats.json`` holds the cases both must pass).
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal

from compute.numbers import finite_float

SIGNIFICANT = 3
WHOLE_FROM = 100
MAX_DECIMALS = 20  # below 1e-18 a figure reads 0


def format_credit(value: object) -> str:
    number = finite_float(value)
    if number is None or number <= 0:
        return "0"
    if number >= WHOLE_FROM:
        whole = Decimal(number).quantize(Decimal(1), rounding=ROUND_HALF_UP)
        return f"{int(whole):,}"
    decimals = SIGNIFICANT - 1 - math.floor(math.log10(number))
    if decimals > MAX_DECIMALS:
        return "0"
    rounded = Decimal(number).quantize(Decimal(1).scaleb(-decimals), rounding=ROUND_HALF_UP)
    text = format(rounded, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text
