from __future__ import annotations

from django import forms

from socialgrid.accounts.models import Privacy, Profile
from socialgrid.accounts.profiles import (
    AVATAR_URL_MAX,
    BIO_MAX,
    DISPLAY_NAME_MAX,
    avatar_url_error,
    display_name_error,
    normalize_line,
    normalize_text,
)


class ProfileForm(forms.ModelForm):
    display_name = forms.CharField(
        label="Display name",
        required=False,
        max_length=DISPLAY_NAME_MAX,
        strip=False,  # normalised in clean_display_name
        help_text="Shown instead of your username. Leave empty to use your username.",
        widget=forms.TextInput(attrs={"autocomplete": "nickname"}),
    )
    # A plain text field, not a URLField: Django's URLField accepts ftp:// and quietly adds a
    # scheme; an avatar must be an explicit http(s) address.
    avatar_url = forms.CharField(
        label="Avatar image URL",
        required=False,
        max_length=AVATAR_URL_MAX,
        help_text="An https:// address of a square picture, or empty for none.",
        widget=forms.URLInput(attrs={"placeholder": "https://", "inputmode": "url"}),
    )
    bio = forms.CharField(
        label="About you",
        required=False,
        max_length=BIO_MAX,
        strip=False,
        help_text=f"Up to {BIO_MAX} characters, shown on your public page.",
        widget=forms.Textarea(attrs={"rows": 4}),
    )
    privacy = forms.ChoiceField(
        label="How others see you",
        choices=Privacy.choices,
        widget=forms.RadioSelect,
        help_text=(
            "Anonymously, you appear as “Anonymous volunteer #number” with your credit only: "
            "no name, picture or bio, and your page is not reachable by your username."
        ),
    )

    class Meta:
        model = Profile
        fields = ["display_name", "avatar_url", "bio", "privacy", "share_stats"]

    def clean_display_name(self) -> str:
        name = normalize_line(self.cleaned_data["display_name"])
        if error := display_name_error(name):
            raise forms.ValidationError(error)
        return name

    def clean_avatar_url(self) -> str:
        url = self.cleaned_data["avatar_url"].strip()
        if error := avatar_url_error(url):
            raise forms.ValidationError(error)
        return url

    def clean_bio(self) -> str:
        bio = normalize_text(self.cleaned_data["bio"])
        if len(bio) > BIO_MAX:
            raise forms.ValidationError(f"Use at most {BIO_MAX} characters.")
        return bio
