"""What the engine tells the rest of the platform.

``credit_granted`` is sent inside the transaction that writes the credit ledger, with the
grants that took effect (``grants``: list of compute.credit.Grant) and ``now``. Receivers may
write rows that must commit exactly once with the grant (team credit, daily roll-ups,
recruit counting); they must be quick, and an exception rolls the grant back (the validation
is retried), so nothing is ever half-credited.

``credit_claimed`` is sent when an account takes over an anonymous host that had earned
credit (``user_id``, ``amount`` moved, ``now``), inside the claiming transaction: that credit
is the account's from then on, as if granted to it (recruit counting listens).
"""

from __future__ import annotations

from django.dispatch import Signal

credit_granted = Signal()
credit_claimed = Signal()
