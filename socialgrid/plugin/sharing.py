"""What a shared link to the home page or a project page shows (Open Graph, Twitter cards).

Feeds for templates/includes/share_meta.html. Every URL is absolute: crawlers fetch the
image and canonical URL out of context.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.urls import reverse
from django.utils.text import Truncator

from compute.models import Project

SITE_TITLE = "socialgrid · volunteer computing in your browser"
HOME_DESCRIPTION = (
    "Lend your browser's spare computing power to research projects: open a project, "
    "press Start, stop whenever you like."
)
CALL_TO_ACTION = "Lend it your browser's spare power: open the page and press Start."
# share_meta.html cuts the description at 160 characters for <meta name="description">;
# the call to action must survive that cut.
DESCRIPTION_LIMIT = 160


@dataclass(frozen=True)
class Share:
    title: str
    description: str
    url: str
    image: str = ""


def project_description(project: Project) -> str:
    room = DESCRIPTION_LIMIT - len(CALL_TO_ACTION) - 1
    about = " ".join(project.description.split())
    if not about:
        about = f"{project.name}, a volunteer computing project."
    return f"{Truncator(about).chars(room)} {CALL_TO_ACTION}"


def project_share(project: Project, has_picture: bool, absolute: Callable[[str], str]) -> Share:
    image = absolute(reverse("compute:project_picture", args=[project.slug])) if has_picture else ""
    return Share(
        title=project.name,
        description=project_description(project),
        url=absolute(project.get_absolute_url()),
        image=image,
    )


def home_share(absolute: Callable[[str], str]) -> Share:
    url = absolute(reverse("compute:home"))
    return Share(title=SITE_TITLE, description=HOME_DESCRIPTION, url=url)
