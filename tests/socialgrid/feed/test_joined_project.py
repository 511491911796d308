"""A new membership is news: joined_project is published once, when it is created."""

from __future__ import annotations

from compute.models import Membership
from socialgrid.feed.models import FeedItem, Verb


def test_joining_a_project_publishes_it(user_factory, project_factory):
    user, project = user_factory(), project_factory()
    Membership.objects.create(user=user, project=project)
    item = FeedItem.objects.get()
    assert (item.actor, item.verb, item.project) == (user, Verb.JOINED_PROJECT, project)


def test_saving_a_membership_again_publishes_nothing_more(user_factory, project_factory):
    membership = Membership.objects.create(user=user_factory(), project=project_factory())
    membership.resource_share = 50
    membership.save()
    Membership.objects.get_or_create(user=membership.user, project=membership.project)
    assert FeedItem.objects.count() == 1


def test_each_project_joined_is_its_own_item(user_factory, project_factory, host_factory):
    user = user_factory()
    host_factory(project_factory(), project_factory(), user=user)
    assert FeedItem.objects.filter(actor=user, verb=Verb.JOINED_PROJECT).count() == 2


def test_the_item_commits_with_the_membership(
    user_factory, project_factory, django_capture_on_commit_callbacks
):
    user, project = user_factory(), project_factory()
    with django_capture_on_commit_callbacks() as callbacks:
        Membership.objects.create(user=user, project=project)
    assert len(callbacks) == 1  # the live push waits for the commit
