"""Feed items as readable sentences ("Ada joined Mandelbrot@Home").

A sentence is a list of parts, each plain text with an optional link. The page's template
and the live script (static/socialgrid/feed.js) both build it from the same parts, the
template with autoescaping and the script with textContent, so user-supplied values (names,
team names, challenge titles) are only ever text. Links are built here from slugs and ids,
never taken from item data.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ObjectDoesNotExist
from django.urls import NoReverseMatch, reverse

from socialgrid.feed.models import BadgeKind, FeedItem, Verb, badge_title

MAX_TEXT = 120


@dataclass(frozen=True)
class Part:
    text: str
    href: str = ""


@dataclass(frozen=True)
class Sentence:
    id: int
    verb: str
    parts: tuple[Part, ...]
    created_at: Any  # datetime

    @property
    def text(self) -> str:
        return "".join(part.text for part in self.parts)

    def as_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "verb": self.verb,
            "text": self.text,
            "parts": [{"text": p.text, "href": p.href} for p in self.parts],
            "created_at": self.created_at.isoformat(),
        }


def public_name(user) -> str:
    """The shared rule (docs/social.md): the profile's public name, anonymous if chosen."""
    try:
        return user.profile.public_name
    except ObjectDoesNotExist:
        # Every user gets a profile on save; this only covers rows made before that rule.
        return user.get_username()


def profile_url(user) -> str:
    # An anonymous volunteer's page is addressed by id, never by username (accounts).
    try:
        return user.profile.get_absolute_url()
    except (ObjectDoesNotExist, NoReverseMatch):
        return ""


def _person(user) -> Part:
    return Part(public_name(user), profile_url(user))


def _url(name: str, *args: Any) -> str:
    """A link to a page of another app, or none; a slug that its route would not accept
    (only possible in hand-made data) gives no link rather than a broken one."""
    try:
        return reverse(name, args=args)
    except NoReverseMatch:
        return ""


def _text(value: Any) -> str:
    text = " ".join(str(value or "").split())
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


class _People:
    """Volunteers named by id in item data (a new friend, a recruit), fetched in one query
    and shown by their current public name."""

    KEYS = ("friend_id", "recruit_id")

    def __init__(self, items: Sequence[FeedItem]) -> None:
        ids = {_int(item.data.get(key)) for item in items for key in self.KEYS}
        ids.discard(None)
        users = get_user_model().objects.select_related("profile").filter(id__in=ids)
        self.parts = {user.id: _person(user) for user in users}

    def part(self, data: dict, key: str) -> Part | None:
        """The volunteer ``data[key + "_id"]``, else the name stored as ``data[key]``."""
        found = self.parts.get(_int(data.get(f"{key}_id")))
        if found is None and _text(data.get(key)):
            found = Part(_text(data.get(key)))
        return found


def _team(data: dict) -> list[Part]:
    name = _text(data.get("team_name") or data.get("team"))
    if not name:
        return []
    slug = data.get("team_slug")
    return [Part(" the team "), Part(name, _url("teams:detail", slug) if slug else "")]


def _project(item: FeedItem) -> Part:
    return Part(item.project.name, item.project.get_absolute_url())


def _joined_project(item: FeedItem, data: dict, people: _People) -> list[Part]:
    if item.project is None:
        return [Part(" joined a project")]
    return [Part(" joined "), _project(item)]


def _credit_milestone(item: FeedItem, data: dict, people: _People) -> list[Part]:
    credit = _int(data.get("credit"))
    if credit is None or credit < 0:
        return [Part(" reached a credit milestone")]
    return [Part(f" reached {badge_title(BadgeKind.CREDIT, credit)}")]


def _badge(item: FeedItem, data: dict, people: _People) -> list[Part]:
    kind, level = data.get("kind"), _int(data.get("level"))
    if kind not in BadgeKind.values or level is None:
        return [Part(" earned a badge")]
    return [Part(f" earned the “{badge_title(kind, level)}” badge")]


def _team_verb(action: str) -> Callable[[FeedItem, dict, _People], list[Part]]:
    def sentence(item: FeedItem, data: dict, people: _People) -> list[Part]:
        return [Part(f" {action}"), *(_team(data) or [Part(" a team")])]

    return sentence


def _became_friends(item: FeedItem, data: dict, people: _People) -> list[Part]:
    friend = people.part(data, "friend")
    if friend is None:
        return [Part(" made a new friend")]
    return [Part(" and "), friend, Part(" became friends")]


def _recruited(item: FeedItem, data: dict, people: _People) -> list[Part]:
    recruit = people.part(data, "recruit")
    parts = [Part(" recruited "), recruit] if recruit else [Part(" recruited a new volunteer")]
    if item.project is not None:
        parts += [Part(" to "), _project(item)]
    return parts


# Teams publishes when a challenge is created; other moments may say so in "event".
CHALLENGE_EVENTS = {"started": "started", "joined": "joined", "won": "won", "finished": "finished"}


def _challenge(item: FeedItem, data: dict, people: _People) -> list[Part]:
    title = _text(data.get("challenge_name") or data.get("title"))
    if not title:
        return [Part(" took part in a team challenge"), *_team(data)]
    action = CHALLENGE_EVENTS.get(data.get("event"), "started")
    slug = data.get("challenge_slug")
    link = _url("teams:challenge", slug) if slug else ""
    parts = [Part(f" {action} the challenge “"), Part(title, link), Part("”")]
    team = _team(data)
    return [*parts, Part(" for"), *team] if team else parts


SENTENCES: dict[str, Callable[[FeedItem, dict, _People], list[Part]]] = {
    Verb.JOINED_PROJECT: _joined_project,
    Verb.CREDIT_MILESTONE: _credit_milestone,
    Verb.BADGE: _badge,
    Verb.FOUNDED_TEAM: _team_verb("founded"),
    Verb.JOINED_TEAM: _team_verb("joined"),
    Verb.LEFT_TEAM: _team_verb("left"),
    Verb.BECAME_FRIENDS: _became_friends,
    Verb.RECRUITED: _recruited,
    Verb.CHALLENGE: _challenge,
}


def render_items(items: Sequence[FeedItem]) -> list[Sentence]:
    """Sentences for ``items`` (with actor__profile and project selected): one extra query
    at most, for the volunteers their data names."""
    people = _People(items)
    sentences = []
    for item in items:
        data = item.data if isinstance(item.data, dict) else {}
        verb = SENTENCES.get(item.verb)
        rest = verb(item, data, people) if verb else [Part(f" {item.get_verb_display()}")]
        sentences.append(
            Sentence(item.id, item.verb, (_person(item.actor), *rest), item.created_at)
        )
    return sentences
