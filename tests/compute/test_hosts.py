"""Identifying the host behind a hello: what a new host's hello asks of the database, and
which projects it may name."""

from __future__ import annotations

from django.db import connection
from django.test.utils import CaptureQueriesContext

import pytest

from compute import hosts
from compute.catalog import catalog
from compute.protocol import Capabilities

pytestmark = pytest.mark.django_db


def hello(project_slug, **kwargs):
    return hosts.open_session(
        None, Capabilities(cores=2), host_uuid=None, token=None, project_slug=project_slug, **kwargs
    )


def test_a_new_hosts_hello_writes_the_host_and_reads_nothing_else(project_factory):
    """A hello storm after a restart is hundreds of these a second: the project comes from
    the process's catalog, and a host made by the hello holds nothing to look up."""
    project = project_factory()
    catalog.apps()  # as in a running process: loaded once, then kept

    with CaptureQueriesContext(connection) as queries:
        session = hello(project.slug)

    assert session.project_ids == [project.id]
    assert session.resume == []
    assert hosts.read_host_token(session.host_token) == str(session.host.uuid)
    statements = [q["sql"].split()[0].upper() for q in queries.captured_queries]
    assert "SELECT" not in statements
    assert statements.count("INSERT") == 1


def test_a_project_deactivated_in_this_process_is_refused_at_once(project_factory):
    project = project_factory()
    assert catalog.active_project(project.slug) == project.id

    project.is_active = False
    project.save()

    with pytest.raises(hosts.Refused) as refused:
        hello(project.slug)
    assert refused.value.reason == "unknown_project"


def test_a_project_without_apps_is_found_in_the_database(project_factory):
    project = project_factory(slug="no-apps")
    project.apps.all().delete()
    assert catalog.active_project("no-apps") is None

    session = hello("no-apps")

    assert session.project_ids == [project.id]


def test_an_unknown_project_is_refused(db):
    with pytest.raises(hosts.Refused) as refused:
        hello("nowhere")
    assert refused.value.reason == "unknown_project"
