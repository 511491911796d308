from __future__ import annotations

from django.db import models


class CreditTotals(models.Model):
    """Total credit and BOINC's recent average credit (RAC) with the time it was last updated.

    ``rac_time`` is seconds since the epoch, as in BOINC, which keeps the decay a plain
    arithmetic expression that every database can evaluate in one UPDATE.
    """

    total_credit = models.FloatField(default=0.0)
    rac = models.FloatField("recent average credit", default=0.0)
    rac_time = models.FloatField(default=0.0)

    class Meta:
        abstract = True
