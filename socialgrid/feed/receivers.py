"""What the feed hears from the engine: new memberships and granted credit."""

from __future__ import annotations

from django.db.models.signals import post_save
from django.dispatch import receiver

from compute.credit import Grant
from compute.models import Membership
from compute.signals import credit_granted
from socialgrid.feed import badges
from socialgrid.feed.models import Verb
from socialgrid.feed.publishing import publish


@receiver(post_save, sender=Membership, dispatch_uid="feed-joined-project")
def publish_joined_project(sender, instance: Membership, created: bool, **kwargs) -> None:
    # Only a new membership is news; coming back after leaving or pausing is not. Fixture
    # loading (raw) is not an event.
    if created and not kwargs.get("raw"):
        publish(instance.user, Verb.JOINED_PROJECT, project=instance.project)


@receiver(credit_granted, dispatch_uid="feed-credit-milestones")
def award_credit_milestones(sender, grants: list[Grant], **kwargs) -> None:
    # Inside the granting transaction: the badges and their feed items commit with the credit.
    badges.award_credit_milestones({g.user_id for g in grants if g.user_id is not None})
