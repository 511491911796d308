"""Forms turn what a volunteer typed into arguments for the flows; the flows do the work."""

from __future__ import annotations

import re

from django import forms

from socialgrid.teams.challenges import MAX_TEAMS, parse_slugs
from socialgrid.teams.models import Team

DATETIME_LOCAL = "%Y-%m-%dT%H:%M"


def _url_field() -> forms.URLField:
    return forms.URLField(
        label="Web site",
        required=False,
        max_length=300,
        assume_scheme="https",
        help_text="Optional; http or https only.",
    )


class TeamForm(forms.ModelForm):
    url = _url_field()

    class Meta:
        model = Team
        fields = ["name", "description", "url"]
        widgets = {"description": forms.Textarea(attrs={"rows": 5})}
        help_texts = {
            "name": "Up to 60 characters. It cannot be changed later.",
            "description": "Optional: what brings your team together.",
        }

    def clean_name(self) -> str:
        # "My  Team" and "my team" would look the same on a ranking.
        name = re.sub(r"\s+", " ", self.cleaned_data["name"]).strip()
        if Team.objects.filter(name__iexact=name).exists():
            raise forms.ValidationError("A team with this name already exists.")
        return name


class TeamEditForm(forms.ModelForm):
    url = _url_field()

    class Meta:
        model = Team
        fields = ["description", "url"]
        widgets = {"description": forms.Textarea(attrs={"rows": 5})}


class ChallengeForm(forms.Form):
    name = forms.CharField(max_length=80)
    description = forms.CharField(
        max_length=2000, required=False, widget=forms.Textarea(attrs={"rows": 4})
    )
    starts_at = forms.DateTimeField(
        label="Starts (UTC)",
        input_formats=[DATETIME_LOCAL, "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format=DATETIME_LOCAL),
    )
    ends_at = forms.DateTimeField(
        label="Ends (UTC)",
        input_formats=[DATETIME_LOCAL, "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S"],
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format=DATETIME_LOCAL),
    )
    teams = forms.CharField(
        label="Teams to invite",
        max_length=1000,
        help_text=(
            "The last part of each team's page address (night-owls for /teams/night-owls/), "
            f"separated by commas or spaces; up to {MAX_TEAMS - 1} teams."
        ),
    )

    def clean_teams(self) -> list[str]:
        slugs = parse_slugs(self.cleaned_data["teams"])
        if not slugs:
            raise forms.ValidationError("Name at least one other team.")
        return slugs

    def clean(self) -> dict:
        data = super().clean()
        start, end = data.get("starts_at"), data.get("ends_at")
        if start and end and end <= start:
            self.add_error("ends_at", "A challenge must end after it starts.")
        return data
