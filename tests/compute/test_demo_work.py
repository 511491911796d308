"""The demo's endless work: volunteers use up each batch, the replenisher submits the next
one of each example's series, and finished batches beyond the newest few are purged while
the credit they earned stays.

The volunteers lease and report through the engine's own functions; their outputs have the
shape each app's kernel answers with, not its computation (the Python references take
seconds a tile), which is all the validator and the assimilators look at here.
"""

from __future__ import annotations

import itertools
import subprocess
import sys
from array import array
from pathlib import Path

from django.db.models import Count, Sum

import pytest

from compute import assimilation, demo_work, pictures, submission, transitioner, validation
from compute.demo import DEMO_PROJECTS, install_demo
from compute.examples import EXAMPLES, abc_triples, keysearch, mandelbrot
from compute.models import (
    App,
    AssimilatedOutput,
    Batch,
    CreditEntry,
    Host,
    Membership,
    Project,
    Replica,
    Volunteer,
    WorkUnit,
)
from compute.results import record_result
from compute.scheduler import lease_replicas
from compute.states import BatchState, ServerState
from socialgrid.feed.models import Badge

ROOT = Path(__file__).resolve().parents[2]
KEEP = 2


@pytest.fixture
def demo(settings, user_factory, host_factory):
    settings.DEMO_WORK = {"ENABLED": True, "LOW_WATER": 20, "KEEP_BATCHES": KEEP}
    install_demo(user_factory(is_superuser=True, is_staff=True))
    projects = list(Project.objects.filter(slug__in=DEMO_PROJECTS))
    return [host_factory(*projects, cores=64) for _ in range(2)]


def kernel_answer(app_name: str, data: dict) -> dict:
    """What a browser's kernel sends back for ``data``, in shape."""
    if app_name == "mandelbrot":
        return {"counts": mandelbrot.encode_counts(array("H", bytes(2 * data["w"] * data["h"])))}
    if app_name == "abc-triples":
        return {"hits": []}
    key = keysearch.demo_key(data["start"] - data["start"] % keysearch.DEMO_KEYSPACE)
    if data["start"] <= key < data["stop"]:
        return {"found": key, "checked": key - data["start"] + 1}
    return {"found": None, "checked": data["stop"] - data["start"]}


def volunteers_finish_everything(hosts: list[Host], keep_one_of: str = "") -> int:
    """Lease and report until nothing is left to lease; then the validator and assimilator
    run as their sweeps would. The first replica of app ``keep_one_of`` the last host leases
    stays out (a volunteer who went quiet). Returns how many replicas were reported."""
    computed = 0
    while True:
        leased = 0
        for host in hosts:
            for a in lease_replicas(host, 200):
                leased += 1
                if host == hosts[-1] and a.app_name == keep_one_of:
                    keep_one_of = ""
                    continue
                output = kernel_answer(a.app_name, a.input)
                record_result(host, a.replica_id, a.lease_token, output, 1.0)
                computed += 1
        validation.validate_pending()
        assimilation.assimilate_pending()
        if not leased:
            return computed


def newest_batches() -> dict[str, Batch]:
    return {
        slug: Batch.objects.filter(project__slug=slug).order_by("-id").first()
        for slug in DEMO_PROJECTS
    }


def inputs_of(batch: Batch) -> list[dict]:
    return list(batch.workunits.order_by("id").values_list("input", flat=True))


def credit_totals() -> dict[str, float]:
    return {
        "volunteers": Volunteer.objects.aggregate(s=Sum("total_credit"))["s"] or 0.0,
        "hosts": Host.objects.aggregate(s=Sum("total_credit"))["s"] or 0.0,
        "memberships": Membership.objects.aggregate(s=Sum("total_credit"))["s"] or 0.0,
        "ledger": CreditEntry.objects.aggregate(s=Sum("amount"))["s"] or 0.0,
    }


def row_counts() -> dict[str, int]:
    return {
        "batches": Batch.objects.count(),
        "workunits": WorkUnit.objects.count(),
        "replicas": Replica.objects.count(),
        "outputs": AssimilatedOutput.objects.count(),
    }


def assert_continues(slug: str, previous: list[dict], new: list[dict]) -> None:
    if slug == "mandelbrot":
        before, after = previous[0], new[0]
        assert mandelbrot.zoom_level(after) == mandelbrot.zoom_level(before) + 1
        # Deeper: half as wide, and inside the previous view.
        width = after["re_max"] - after["re_min"]
        assert width == pytest.approx((before["re_max"] - before["re_min"]) / 2)
        assert before["re_min"] <= after["re_min"] < after["re_max"] <= before["re_max"]
        assert before["im_min"] <= after["im_min"] < after["im_max"] <= before["im_max"]
        assert after["max_iter"] > before["max_iter"]
    elif slug == "abc-at-home":
        if previous[-1]["c_hi"] == abc_triples.MAX_C:  # as far as the kernel goes: again
            assert new == abc_triples.demo_inputs()
            return
        assert new[0]["c_lo"] == previous[-1]["c_hi"]
        assert all(a["c_hi"] == b["c_lo"] for a, b in itertools.pairwise(new))
    else:
        assert new[0]["start"] == previous[-1]["stop"]
        assert new[0]["target"] != previous[0]["target"]  # a new key to find


def test_the_demo_work_never_runs_out_continues_each_series_and_stays_bounded(demo):
    hosts = demo
    rounds = 7
    previous = {slug: inputs_of(b) for slug, b in newest_batches().items()}
    credit = credit_totals()
    badges = Badge.objects.count()
    counts = []
    for _ in range(rounds):
        # Every project's work is used up...
        assert volunteers_finish_everything(hosts) > 0
        assert not Replica.objects.filter(server_state=ServerState.UNSENT).exists()
        # ...and the replenisher gives each the next batch of its series.
        submitted = demo_work.replenish_demo_work()
        assert set(submitted) == set(DEMO_PROJECTS)
        for slug, batch_id in submitted.items():
            batch = Batch.objects.get(id=batch_id)
            assert batch.project.owner.is_superuser  # as the demo's owner
            new = inputs_of(batch)
            assert_continues(slug, previous[slug], new)
            previous[slug] = new
        # Credit only grows.
        now = credit_totals()
        assert all(now[k] >= credit[k] for k in credit)
        assert now["ledger"] > credit["ledger"]
        credit = now
        assert Badge.objects.count() >= badges
        badges = Badge.objects.count()
        counts.append(row_counts())
    # Bounded: each project keeps its newest KEEP batches (one of them the new one).
    assert counts[-1]["batches"] == KEEP * len(DEMO_PROJECTS)
    for later in counts[KEEP:]:
        assert later["batches"] == KEEP * len(DEMO_PROJECTS)
        assert later["workunits"] <= KEEP * (30 + 20 + 40)
        assert later["replicas"] <= 2 * later["workunits"]
        assert later["outputs"] <= later["workunits"]
    # The credit of purged work stays in the ledger and the totals.
    purged = CreditEntry.objects.exclude(workunit_id__in=WorkUnit.objects.values("id"))
    assert purged.exists()
    assert Volunteer.objects.aggregate(s=Sum("total_credit"))["s"] == pytest.approx(
        CreditEntry.objects.aggregate(s=Sum("amount"))["s"]
    )


def test_a_project_with_work_enough_gets_no_new_batch(demo):
    assert demo_work.replenish_demo_work() == {}
    assert Batch.objects.count() == len(DEMO_PROJECTS)


def test_a_project_below_the_low_water_mark_gets_one(demo, settings):
    # Replicas waiting: 40 for ABC, 60 for Mandelbrot, 80 for the key search.
    settings.DEMO_WORK = {**settings.DEMO_WORK, "LOW_WATER": 41}
    first = newest_batches()["abc-at-home"]
    assert set(demo_work.replenish_demo_work()) == {"abc-at-home"}
    assert inputs_of(newest_batches()["abc-at-home"])[0]["c_lo"] == inputs_of(first)[-1]["c_hi"]
    assert demo_work.replenish_demo_work() == {}


def test_nothing_happens_when_the_demo_work_is_off(demo, settings):
    settings.DEMO_WORK = {**settings.DEMO_WORK, "ENABLED": False}
    for _ in range(KEEP + 1):
        volunteers_finish_everything(demo)
        for slug in DEMO_PROJECTS:
            project = Project.objects.get(slug=slug)
            app = project.apps.get()
            submission.create_batch(project, app, inputs_of(newest_batches()[slug]), name="x")
    volunteers_finish_everything(demo)
    before = row_counts()
    assert demo_work.replenish_demo_work() == {}
    assert row_counts() == before
    assert before["batches"] == (KEEP + 2) * len(DEMO_PROJECTS)


def test_a_finished_batch_is_kept_while_a_replica_of_it_is_out(demo, settings, host_factory):
    settings.DEMO_WORK = {**settings.DEMO_WORK, "KEEP_BATCHES": 1}
    project = Project.objects.get(slug="abc-at-home")
    project.target_nresults = 3  # a third replica that is not needed for the quorum
    project.save()
    volunteers_finish_everything(demo)
    demo_work.replenish_demo_work()
    batch = newest_batches()["abc-at-home"]
    late = host_factory(project, cores=64)
    volunteers_finish_everything([*demo, late], keep_one_of="abc-triples")
    batch.refresh_from_db()
    assert batch.state == BatchState.COMPLETED
    (out,) = Replica.objects.filter(server_state=ServerState.IN_PROGRESS)
    assert out.workunit.batch_id == batch.id

    demo_work.replenish_demo_work()
    assert Batch.objects.filter(id=batch.id).exists()

    # The late volunteer reports; the transitioner sees nothing more is out.
    record_result(late, out.id, out.lease_token, {"hits": []}, 1.0)
    validation.validate_pending()
    transitioner.run_transitioner()
    demo_work.replenish_demo_work()
    assert not Batch.objects.filter(id=batch.id).exists()
    assert not Replica.objects.filter(id=out.id).exists()
    assert CreditEntry.objects.filter(replica_id=out.id).exists()


def test_the_picture_shows_the_newest_zoom_level_while_a_straggler_of_the_last_is_out(demo):
    # The first level's tiles come back but one, which a volunteer keeps.
    volunteers_finish_everything(demo, keep_one_of="mandelbrot")
    project = Project.objects.get(slug="mandelbrot")
    first = project.batches.get()
    assert first.state == BatchState.IN_PROGRESS
    # The next level is submitted meanwhile, and completes first.
    demo_work.replenish_demo_work()
    volunteers_finish_everything(demo)
    second = project.batches.exclude(id=first.id).get()
    assert second.state == BatchState.COMPLETED
    first.refresh_from_db()
    assert first.state == BatchState.IN_PROGRESS

    shown = pictures.picture_batch(project)
    assert shown == second
    assert mandelbrot.zoom_level(shown.workunits.first().input) == 1


def test_the_beat_schedules_the_demo_work_only_when_it_is_on():
    code = (
        "import django; django.setup(); from django.conf import settings; "
        "print(settings.CELERY_BEAT_SCHEDULE.get('demo-work', {}).get('task'))"
    )
    env = {"DJANGO_SETTINGS_MODULE": "socialgrid.settings", "PATH": "/usr/bin:/bin"}

    def scheduled(**extra: str) -> str:
        out = subprocess.run(
            [sys.executable, "-c", code],
            env={**env, **extra},
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
        )
        return out.stdout.strip()

    assert scheduled() == "compute.tasks.replenish_demo_work"  # embedded: make demo
    assert scheduled(DEMO_WORK="0") == "None"
    assert scheduled(REDIS_URL="redis://127.0.0.1:1/0") == "None"
    assert scheduled(REDIS_URL="redis://127.0.0.1:1/0", DEMO_WORK="1") == (
        "compute.tasks.replenish_demo_work"
    )


@pytest.fixture(autouse=True)
def _db(db):
    return None


def test_a_run_fills_up_to_the_low_water_mark_with_as_many_batches_as_it_takes(demo, settings):
    """Volunteers faster than the runs: one run brings each project back over the mark,
    with no batch more than that takes."""
    settings.DEMO_WORK = {**settings.DEMO_WORK, "LOW_WATER": 150}
    before = dict(Batch.objects.values_list("project__slug").annotate(n=Count("id")))
    submitted = demo_work.replenish_demo_work()
    assert set(submitted) == set(DEMO_PROJECTS)
    for slug, (_, name) in DEMO_PROJECTS.items():
        app = App.objects.get(project__slug=slug, name=EXAMPLES[name].name)
        newest = Batch.objects.get(id=submitted[slug])
        assert Batch.objects.filter(project__slug=slug).count() > before[slug], slug
        open_now = demo_work.fresh_replicas(app)
        newest_replicas = Replica.objects.filter(workunit__batch=newest).count()
        assert open_now >= 150, slug
        assert open_now - newest_replicas < 150, f"{slug}: a batch more than it took"
    assert demo_work.replenish_demo_work() == {}


def test_batches_queued_behind_the_one_being_computed_do_not_take_the_picture(demo, settings):
    """Several levels submitted at once: the picture is the level volunteers compute first
    until a tile of a later one is back, never an empty grid of a level nobody has reached."""
    settings.DEMO_WORK = {**settings.DEMO_WORK, "LOW_WATER": 150}
    project = Project.objects.get(slug="mandelbrot")
    first = project.batches.get()
    demo_work.replenish_demo_work()
    assert project.batches.count() > 2
    assert pictures.picture_batch(project) == first
    assert pictures.project_picture(project.slug) == mandelbrot.render_png(first)


def test_a_volunteer_computing_alone_never_runs_dry_and_the_rows_stay_bounded(demo):
    """Alone on quorum-2 projects, a volunteer takes one replica of each work unit; the
    others wait for a second volunteer. The replenisher counts only work nobody has started,
    so the lone volunteer always finds more, and the batches left waiting are cancelled and
    purged once newer ones pile up."""
    alone = demo[0]
    batches = []
    for _ in range(3 * demo_work.MAX_OPEN_BATCHES):
        # Everything the lone volunteer may take, computed...
        assert volunteers_finish_everything([alone]) > 0, "the volunteer ran out of work"
        # ...leaves the other replica of each of its work units waiting...
        assert Replica.objects.filter(server_state=ServerState.UNSENT).exists()
        # ...and the replenisher tops up every project all the same.
        assert set(demo_work.replenish_demo_work()) == set(DEMO_PROJECTS)
        transitioner.run_transitioner()
        assimilation.assimilate_pending()
        batches.append(Batch.objects.count())
    per_project = demo_work.MAX_OPEN_BATCHES + KEEP + 1
    assert max(batches[demo_work.MAX_OPEN_BATCHES + 2 :]) <= per_project * len(DEMO_PROJECTS)
    assert Batch.objects.filter(state=BatchState.CANCELLED).exists()
