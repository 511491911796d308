from __future__ import annotations

import re

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import validate_email

from socialgrid.invites.emails import MAX_ADDRESSES_PER_SEND

MAX_MESSAGE_LENGTH = 500
SEPARATORS = re.compile(r"[\s,;]+")


class InviteEmailForm(forms.Form):
    addresses = forms.CharField(
        label="E-mail addresses",
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2, "autocomplete": "off", "spellcheck": "false"}),
        help_text=f"Up to {MAX_ADDRESSES_PER_SEND}, separated by commas or new lines. "
        "Each person gets their own e-mail; we don't keep the addresses.",
    )
    message = forms.CharField(
        label="Personal message (optional)",
        required=False,
        max_length=MAX_MESSAGE_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    project = forms.SlugField(required=False, widget=forms.HiddenInput)

    def clean_addresses(self) -> list[str]:
        seen: dict[str, str] = {}
        invalid = []
        for address in SEPARATORS.split(self.cleaned_data["addresses"]):
            if not address:
                continue
            try:
                validate_email(address)
            except ValidationError:
                invalid.append(address)
                continue
            seen.setdefault(address.lower(), address)
        if invalid:
            shown = ", ".join(invalid[:5]) + (" …" if len(invalid) > 5 else "")
            raise ValidationError(
                "Not a valid e-mail address: %(shown)s. Nothing was sent.",
                code="invalid",
                params={"shown": shown},
            )
        if not seen:
            raise ValidationError("Enter at least one e-mail address.", code="required")
        if len(seen) > MAX_ADDRESSES_PER_SEND:
            raise ValidationError(
                "Send to at most %(n)d addresses at a time.",
                code="too_many",
                params={"n": MAX_ADDRESSES_PER_SEND},
            )
        return list(seen.values())
