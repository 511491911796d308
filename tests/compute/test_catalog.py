"""The process's app catalog: edits are seen at once in the process that made them, even
when another thread was loading the catalog as the edit was saved."""

from __future__ import annotations

import threading

import pytest

from compute.catalog import Catalog
from compute.models import AppVersion


@pytest.mark.django_db(transaction=True)
def test_an_edit_saved_during_a_load_is_seen_by_the_next_look(project_factory):
    project = project_factory()
    app = project.apps.get()
    catalog = Catalog()
    loading, edited = threading.Event(), threading.Event()
    load = catalog._load

    def slow_load():
        apps = load()  # reads the catalog as it was before the edit
        loading.set()
        edited.wait(10)
        return apps

    catalog._load = slow_load
    looker = threading.Thread(target=catalog.apps)
    looker.start()
    assert loading.wait(10)
    catalog._load = load
    AppVersion.objects.filter(app=app).update(deprecated=True)
    catalog.invalidate()  # as the post_save receiver does for the module's catalog
    edited.set()
    looker.join(10)

    assert not catalog.for_projects({project.id}), "the edit was lost: a stale catalog for TTL"


@pytest.mark.django_db
def test_a_look_within_the_ttl_reads_nothing(project_factory, django_assert_num_queries):
    project = project_factory()
    catalog = Catalog()
    assert [a.name for a in catalog.for_projects({project.id})] == ["square"]
    with django_assert_num_queries(0):
        assert [a.name for a in catalog.for_projects({project.id})] == ["square"]
