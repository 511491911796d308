"""The audit at the end of a run: nothing lost, nothing credited twice, nothing stuck.

- lost: results the server acknowledged to a volunteer that are not SUCCESS replicas in
  the database, plus work units of the batch that were not assimilated with a canonical
  result (assimilate_state other than done, or failed with an error mask).
- double-credited: replicas with more than one ledger entry (the unique constraint forbids
  it; counted all the same), ledger entries for replicas that are not VALID, and hosts whose
  total_credit differs from the sum of their ledger entries by more than 1e-6.
- stuck: work units outside a terminal state (terminal: assimilated or parked in "handler
  failed", not flagged for validation, no replica unsent or in progress).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field

CREDIT_TOLERANCE = 1e-6


@dataclass
class Audit:
    acked: int = 0
    acked_twice: int = 0
    acked_not_success: int = 0
    not_assimilated: int = 0
    failed_workunits: int = 0
    replicas_credited_twice: int = 0
    credit_for_not_valid: int = 0
    hosts_credit_mismatch: int = 0
    stuck_detail: dict[str, int] = field(default_factory=dict)

    @property
    def lost(self) -> int:
        return self.acked_not_success + self.not_assimilated + self.failed_workunits

    @property
    def double_credited(self) -> int:
        return self.replicas_credited_twice + self.credit_for_not_valid + self.hosts_credit_mismatch

    @property
    def stuck(self) -> int:
        return self.stuck_detail.get("total", 0)

    @property
    def clean(self) -> bool:
        return self.lost == 0 and self.double_credited == 0 and self.stuck == 0

    def as_dict(self) -> dict[str, object]:
        return {
            "lost": self.lost,
            "double_credited": self.double_credited,
            "stuck": self.stuck,
            "clean": self.clean,
            **asdict(self),
        }


def audit(batch_id: int, acked: Iterable[int]) -> Audit:
    acked_counts = Counter(acked)
    out = Audit(
        acked=len(acked_counts),
        acked_twice=sum(1 for n in acked_counts.values() if n > 1),
    )
    _audit_results(out, batch_id, set(acked_counts))
    _audit_credit(out)
    out.stuck_detail = stuck_workunits(batch_id)
    return out


def _audit_results(out: Audit, batch_id: int, acked: set[int]) -> None:
    from compute.models import Replica, WorkUnit
    from compute.states import AssimilateState, Outcome

    success = set(
        Replica.objects.filter(workunit__batch_id=batch_id, outcome=Outcome.SUCCESS).values_list(
            "id", flat=True
        )
    )
    out.acked_not_success = len(acked - success)
    workunits = WorkUnit.objects.filter(batch_id=batch_id)
    out.not_assimilated = workunits.exclude(assimilate_state=AssimilateState.DONE).count()
    out.failed_workunits = workunits.filter(
        assimilate_state=AssimilateState.DONE, error_mask__gt=0
    ).count()


def _audit_credit(out: Audit) -> None:
    """Over the whole bench database, which holds only this run."""
    from django.db.models import Count, Sum

    from compute.models import CreditEntry, Host, Replica
    from compute.states import ValidateState

    out.replicas_credited_twice = (
        CreditEntry.objects.values("replica_id")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .order_by()
        .count()
    )
    valid = Replica.objects.filter(validate_state=ValidateState.VALID).values("id")
    out.credit_for_not_valid = CreditEntry.objects.exclude(replica_id__in=valid).count()
    ledger = dict(
        CreditEntry.objects.filter(host__isnull=False)
        .values("host_id")
        .annotate(total=Sum("amount"))
        .order_by()
        .values_list("host_id", "total")
    )
    out.hosts_credit_mismatch = sum(
        1
        for host_id, total in Host.objects.values_list("id", "total_credit")
        if abs(total - (ledger.get(host_id) or 0.0)) > CREDIT_TOLERANCE
    )


def stuck_workunits(batch_id: int) -> dict[str, int]:
    """Work units outside a terminal state, by reason (a work unit may have several)."""
    from django.db.models import Exists, OuterRef, Q

    from compute.models import Replica, WorkUnit
    from compute.states import AssimilateState, ServerState

    out_there = Replica.objects.filter(
        workunit_id=OuterRef("pk"),
        server_state__in=[ServerState.UNSENT, ServerState.IN_PROGRESS],
    )
    workunits = WorkUnit.objects.filter(batch_id=batch_id).annotate(replicas_out=Exists(out_there))
    not_final = ~Q(assimilate_state__in=[AssimilateState.DONE, AssimilateState.ERROR])
    reasons = {
        "not assimilated": not_final,
        "need_validate": Q(need_validate=True),
        "replicas unsent or in progress": Q(replicas_out=True),
    }
    detail = {name: workunits.filter(q).count() for name, q in reasons.items()}
    any_reason = not_final | Q(need_validate=True) | Q(replicas_out=True)
    detail["total"] = workunits.filter(any_reason).count()
    return detail
