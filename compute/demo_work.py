"""Work for the demo that never runs out, in rows that stay bounded.

Every few seconds (the ``demo-work`` entry of the beat schedule, present when
``DEMO_WORK["ENABLED"]``), each demo project with fewer than ``DEMO_WORK["LOW_WATER"]``
replicas of fresh work (work units no volunteer has started) gets the next batch of its
example's series: the Mandelbrot tour one level deeper, the next range of c, the next key
range (``compute.demo.submit_next_batch``, through the submission function the API uses, as
the project's owner). Fresh work, because a volunteer computing alone takes one replica of
each work unit: the others wait for a second volunteer, and counting them would leave the
first without work. Batches so left unfinished are cancelled once more than
``MAX_OPEN_BATCHES`` newer ones are open, and finished or cancelled batches beyond the newest
``DEMO_WORK["KEEP_BATCHES"]`` are purged with their work units, replicas and outputs
(``compute.cleanup.purge_batches``); the credit they earned stays.
"""

from __future__ import annotations

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef

from compute import cleanup, retry, submission
from compute.demo import DEMO_PROJECTS, submit_next_batch
from compute.examples import EXAMPLES, ExampleApp
from compute.models import App, Batch, Replica
from compute.states import BatchState, ServerState


def replenish_demo_work() -> dict[str, int]:
    """Top up and prune every demo project; returns the id of the newest batch submitted, by
    project slug. Does nothing unless the demo's work is switched on."""
    if not settings.DEMO_WORK["ENABLED"]:
        return {}
    submitted = {}
    for slug, (_, example_name) in DEMO_PROJECTS.items():
        example = EXAMPLES[example_name]
        app = (
            App.objects.filter(project__slug=slug, project__is_active=True, name=example.name)
            .select_related("project__owner")
            .first()
        )
        if app is None:
            continue
        batch = top_up(app, example)
        if batch is not None:
            submitted[slug] = batch.id
        prune_batches(app)
    return submitted


def fresh_replicas(app: App) -> int:
    """Unsent replicas of ``app``'s work units that no host has started: work that any
    volunteer, one computing alone included, can lease."""
    started = Replica.objects.filter(workunit_id=OuterRef("workunit_id"), host__isnull=False)
    return (
        Replica.objects.filter(app=app, server_state=ServerState.UNSENT)
        .exclude(Exists(started))
        .count()
    )


# However fast the volunteers were since the last run, one run submits at most this many.
MAX_BATCHES_A_RUN = 8
# Open batches kept beyond this many newer ones are cancelled: far more than two browsers
# hold in flight, so only work waiting for a second volunteer who never came.
MAX_OPEN_BATCHES = 12


@retry.on_conflict()
def top_up(app: App, example: ExampleApp) -> Batch | None:
    """Submit the app's next demo batches while its fresh replicas are below the low-water
    mark (up to MAX_BATCHES_A_RUN); returns the newest, or None.

    The app's row is held while counting and submitting, so two runs at once cannot both
    find the work low: the second waits, then counts the first one's batches. ``FOR NO KEY
    UPDATE`` leaves the foreign-key checks of leases and new replicas unblocked."""
    newest = None
    with transaction.atomic():
        list(App.objects.select_for_update(no_key=True).filter(id=app.id).values_list("id"))
        for _ in range(MAX_BATCHES_A_RUN):
            if fresh_replicas(app) >= settings.DEMO_WORK["LOW_WATER"]:
                break
            newest = submit_next_batch(app, example)
    return newest


def prune_batches(app: App) -> int:
    """Cancel the app's open batches older than its newest MAX_OPEN_BATCHES open ones, and
    purge its finished (or cancelled) batches older than its newest KEEP_BATCHES."""
    stale = app.batches.filter(state=BatchState.IN_PROGRESS).order_by("-id")[MAX_OPEN_BATCHES:]
    for batch in list(stale):
        submission.cancel_batch(batch)
    keep = settings.DEMO_WORK["KEEP_BATCHES"]
    older = app.batches.order_by("-id").values_list("id", "state")[keep:]
    return cleanup.purge_batches([b for b, state in older if state != BatchState.IN_PROGRESS])
