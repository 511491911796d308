"""Every state the engine knows, and the transitions allowed between them.

These follow BOINC's result and work unit states (``boinc_db_types.h``). A replica is
BOINC's "result": one copy of a work unit sent to one host. Its life is three fields
(server state, outcome, validate state) that only ever move along the tables below; the
functions in :mod:`compute.lifecycle` are the only code that changes them.
"""

from __future__ import annotations

import enum

from django.db import models


class ServerState(models.TextChoices):
    UNSENT = "unsent", "unsent"
    IN_PROGRESS = "in_progress", "in progress"
    OVER = "over", "over"


class Outcome(models.TextChoices):
    INIT = "init", "—"
    SUCCESS = "success", "success"
    CLIENT_ERROR = "client_error", "client error"
    NO_REPLY = "no_reply", "no reply"
    DIDNT_NEED = "didnt_need", "didn't need"
    VALIDATE_ERROR = "validate_error", "validate error"


class ValidateState(models.TextChoices):
    INIT = "init", "—"
    VALID = "valid", "valid"
    INVALID = "invalid", "invalid"
    INCONCLUSIVE = "inconclusive", "inconclusive"
    TOO_LATE = "too_late", "too late"
    NO_CHECK = "no_check", "no check"


class AssimilateState(models.TextChoices):
    INIT = "init", "not yet"
    READY = "ready", "ready"
    DONE = "done", "done"
    ERROR = "error", "handler failed"


class FileDeleteState(models.TextChoices):
    INIT = "init", "not yet"
    READY = "ready", "ready"
    DONE = "done", "done"


class Replication(models.TextChoices):
    """How a work unit is replicated; adaptive apps decide at the first lease."""

    FIXED = "fixed", "project quorum"
    ADAPTIVE_PENDING = "adaptive_pending", "adaptive, undecided"
    UNREPLICATED = "unreplicated", "adaptive, trusted host alone"
    ESCALATED = "escalated", "adaptive, replicated"


class ErrorMask(enum.IntFlag):
    """BOINC's ``WU_ERROR_*`` bits; any bit set means the work unit failed."""

    COULDNT_SEND = 1
    TOO_MANY_ERRORS = 2
    TOO_MANY_SUCCESS = 4
    TOO_MANY_TOTAL = 8
    CANCELLED = 16
    NO_CANONICAL = 32

    @classmethod
    def describe(cls, mask: int) -> str:
        if not mask:
            return ""
        return ", ".join(bit.name.lower().replace("_", " ") for bit in cls if mask & bit)


class BatchState(models.TextChoices):
    IN_PROGRESS = "in_progress", "in progress"
    COMPLETED = "completed", "completed"
    CANCELLED = "cancelled", "cancelled"


class MembershipState(models.TextChoices):
    ACTIVE = "active", "active"
    PAUSED = "paused", "paused"
    LEFT = "left", "left"


# A replica's state is the triple (server state, outcome, validate state).
ReplicaState = tuple[str, str, str]

S, R, V = ServerState, Outcome, ValidateState  # R: the replica's outcome

REPLICA_TRANSITIONS: dict[str, tuple[ReplicaState, ReplicaState]] = {
    "lease": ((S.UNSENT, R.INIT, V.INIT), (S.IN_PROGRESS, R.INIT, V.INIT)),
    "not_needed": ((S.UNSENT, R.INIT, V.INIT), (S.OVER, R.DIDNT_NEED, V.INIT)),
    "report_success": ((S.IN_PROGRESS, R.INIT, V.INIT), (S.OVER, R.SUCCESS, V.INIT)),
    "report_error": ((S.IN_PROGRESS, R.INIT, V.INIT), (S.OVER, R.CLIENT_ERROR, V.INIT)),
    "time_out": ((S.IN_PROGRESS, R.INIT, V.INIT), (S.OVER, R.NO_REPLY, V.INIT)),
    "abort": ((S.IN_PROGRESS, R.INIT, V.INIT), (S.OVER, R.DIDNT_NEED, V.INIT)),
    "validate_valid": ((S.OVER, R.SUCCESS, V.INIT), (S.OVER, R.SUCCESS, V.VALID)),
    "validate_invalid": ((S.OVER, R.SUCCESS, V.INIT), (S.OVER, R.SUCCESS, V.INVALID)),
    "validate_inconclusive": ((S.OVER, R.SUCCESS, V.INIT), (S.OVER, R.SUCCESS, V.INCONCLUSIVE)),
    "resolve_valid": ((S.OVER, R.SUCCESS, V.INCONCLUSIVE), (S.OVER, R.SUCCESS, V.VALID)),
    "resolve_invalid": ((S.OVER, R.SUCCESS, V.INCONCLUSIVE), (S.OVER, R.SUCCESS, V.INVALID)),
    "validate_error": ((S.OVER, R.SUCCESS, V.INIT), (S.OVER, R.VALIDATE_ERROR, V.INVALID)),
    "too_late": ((S.OVER, R.SUCCESS, V.INIT), (S.OVER, R.SUCCESS, V.TOO_LATE)),
    "no_check": ((S.OVER, R.SUCCESS, V.INIT), (S.OVER, R.SUCCESS, V.NO_CHECK)),
    "no_check_inconclusive": (
        (S.OVER, R.SUCCESS, V.INCONCLUSIVE),
        (S.OVER, R.SUCCESS, V.NO_CHECK),
    ),
}

ASSIMILATE_TRANSITIONS: dict[str, tuple[str, str]] = {
    "ready": (AssimilateState.INIT, AssimilateState.READY),
    "done": (AssimilateState.READY, AssimilateState.DONE),
    "fail": (AssimilateState.READY, AssimilateState.ERROR),
    "retry": (AssimilateState.ERROR, AssimilateState.READY),
}

FILE_DELETE_TRANSITIONS: dict[str, tuple[str, str]] = {
    "ready": (FileDeleteState.INIT, FileDeleteState.READY),
    "done": (FileDeleteState.READY, FileDeleteState.DONE),
}


def replica_transition(name: str) -> tuple[ReplicaState, ReplicaState]:
    return REPLICA_TRANSITIONS[name]


def allowed_replica_moves() -> set[tuple[ReplicaState, ReplicaState]]:
    return set(REPLICA_TRANSITIONS.values())
