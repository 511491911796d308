"""Publishing to the activity feed and awarding badges: the calls other apps make.

``publish(actor, verb, *, project=None, **data)`` records an item; after the surrounding
transaction commits it is pushed live to the open feed pages of the actor and their friends.
The data each verb is rendered from (socialgrid.feed.sentences; anything else is ignored):

========================  ==================================================================
verb                      data
========================  ==================================================================
joined_project            ``project=<Project>`` (published by this app on a new Membership)
credit_milestone          ``credit=<int>`` (published by this app through award)
badge                     ``kind=<BadgeKind>``, ``level=<int>`` (published through award)
founded/joined/left_team  ``team=<name>``, ``team_slug=<slug>`` (links to /teams/<slug>/)
became_friends            ``friend_id=<user id>`` (the other friend, named by public name)
recruited                 ``recruit_id=<user id>`` (optional: "recruited a new volunteer")
challenge                 ``title=<challenge name>``, ``event`` (started, joined, won,
                          finished), optional ``team``/``team_slug``
========================  ==================================================================

Values must be JSON-serialisable; names are stored as ids where the person's name could
change or become anonymous, and rendered with their current public name.
"""

from __future__ import annotations

import functools
from typing import Any

from django.db import IntegrityError, transaction

from socialgrid.feed import live
from socialgrid.feed.models import Badge, BadgeKind, FeedItem, Verb


def publish(actor, verb: Verb | str, *, project=None, **data: Any) -> FeedItem:
    """Record that ``actor`` did something; it reaches their friends' feeds."""
    # An unknown verb fails here, at the caller, rather than as an item nobody can render.
    item = FeedItem.objects.create(actor=actor, verb=Verb(verb), project=project, data=data)
    # robust: a failed live push is logged and never undoes or breaks the caller's work.
    transaction.on_commit(functools.partial(live.deliver_item, item.id), robust=True)
    return item


def award(user, kind: str, level: int, *, announce: bool = True) -> bool:
    """Give a badge once; returns whether it is new (and then publishes it).

    Credit badges appear in the feed as ``credit_milestone``, the others as ``badge``.
    ``announce=False`` keeps a badge out of the feed (lesser rungs reached together with a
    higher one).
    """
    kind = BadgeKind(kind)
    try:
        with transaction.atomic():
            Badge.objects.create(user=user, kind=kind, level=level)
    except IntegrityError:
        return False
    if announce:
        if kind == BadgeKind.CREDIT:
            publish(user, Verb.CREDIT_MILESTONE, credit=level)
        else:
            publish(user, Verb.BADGE, kind=kind.value, level=level)
    return True
