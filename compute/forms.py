"""Admin forms: submitting a batch, adding an app version, banning a user.

The forms only turn what an operator typed or uploaded into arguments; the work itself is
done by :mod:`compute.submission` and the models.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db.models import Q

from compute.feeder import MAX_PRIORITY
from compute.models import App, AppVersion
from compute.submission import parameter_range, parse_jsonl

WASM_MAGIC = b"\0asm"


def utf8_lines(lines: Iterable[bytes | str]) -> Iterator[str]:
    """Decode an uploaded file line by line, naming the line that is not UTF-8."""
    for number, line in enumerate(lines, start=1):
        if isinstance(line, str):
            yield line
            continue
        try:
            yield line.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ValidationError(f"line {number}: not UTF-8 text") from e


def read_jsonl(lines: Iterable[bytes | str]) -> list[Any]:
    return parse_jsonl(utf8_lines(lines))


class AppChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: App) -> str:
        return f"{obj.project.name} / {obj.title} ({obj})"


class SubmitBatchForm(forms.Form):
    """A new batch for one app, from a parameter range or an uploaded JSON Lines file."""

    RANGE, JSONL = "range", "jsonl"

    app = AppChoiceField(queryset=App.objects.select_related("project"))
    name = forms.CharField(max_length=120)
    priority = forms.IntegerField(
        initial=0,
        min_value=-MAX_PRIORITY,
        max_value=MAX_PRIORITY,
        help_text="Higher goes out first.",
    )
    source = forms.ChoiceField(
        choices=[(RANGE, "a parameter range"), (JSONL, "a JSON Lines file")],
        initial=RANGE,
        widget=forms.RadioSelect,
        label="Inputs from",
    )
    template = forms.CharField(
        required=False,
        initial="{}",
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="A JSON object: the fields every input shares.",
    )
    parameter = forms.CharField(
        required=False, max_length=100, help_text="The field that takes each value of the range."
    )
    start = forms.FloatField(required=False)
    stop = forms.FloatField(required=False, help_text="Not included, as in Python's range.")
    step = forms.FloatField(required=False, initial=1)
    file = forms.FileField(
        required=False, label="JSON Lines file", help_text="One JSON input per line."
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.inputs: list[Any] = []  # the batch's inputs, once the form is valid

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("source") == self.JSONL:
            self._clean_file(data)
        elif data.get("source") == self.RANGE:
            self._clean_range(data)
        return data

    def _clean_file(self, data: dict[str, Any]) -> None:
        upload = data.get("file")
        if not upload:
            self.add_error("file", "Choose a JSON Lines file.")
            return
        try:
            self.inputs = read_jsonl(upload)
        except ValidationError as e:
            self.add_error("file", e)

    def _clean_range(self, data: dict[str, Any]) -> None:
        template = self._template(data.get("template") or "{}")
        for name in ("parameter", "start", "stop", "step"):
            if data.get(name) in (None, ""):
                self.add_error(name, "Required for a parameter range.")
        if data.get("step") == 0:
            self.add_error("step", "The step must not be zero.")
        if self.errors or template is None:
            return
        try:
            self.inputs = parameter_range(
                template, data["parameter"], data["start"], data["stop"], data["step"]
            )
        except ValidationError as e:
            self.add_error(None, e)

    def _template(self, text: str) -> dict[str, Any] | None:
        try:
            template = json.loads(text)
        except json.JSONDecodeError as e:
            self.add_error("template", f"Not valid JSON: {e.msg} (line {e.lineno}).")
            return None
        if not isinstance(template, dict):
            self.add_error("template", 'Must be a JSON object, like {} or {"n": 10}.')
            return None
        return template


class AppVersionForm(forms.ModelForm):
    """A new kernel release: the ES module as text and, optionally, a .wasm binary."""

    wasm_file = forms.FileField(
        required=False,
        label="WebAssembly binary",
        help_text="Optional .wasm file the kernel loads; its sha256 is computed on save.",
    )

    class Meta:
        model = AppVersion
        fields = ["app", "version", "kernel", "deprecated"]

    def clean_wasm_file(self) -> bytes | None:
        upload = self.cleaned_data.get("wasm_file")
        if not upload:
            return None
        data = upload.read()
        if not data.startswith(WASM_MAGIC):
            raise ValidationError("Not a WebAssembly binary (it must start with \\0asm).")
        return data

    def save(self, commit: bool = True) -> AppVersion:
        wasm = self.cleaned_data.get("wasm_file")
        if wasm:
            self.instance.wasm = wasm
        return super().save(commit)


class BanUserForm(forms.Form):
    user = forms.CharField(label="Username or email", max_length=254)

    def clean_user(self) -> Any:
        value = self.cleaned_data["user"].strip()
        users = get_user_model().objects
        exact = users.filter(username=value).first()
        if exact is not None:
            return exact
        matches = list(users.filter(Q(username__iexact=value) | Q(email__iexact=value))[:2])
        if not matches:
            raise ValidationError("No user has that username or email.")
        if len(matches) > 1:
            raise ValidationError("Several users match; give the exact username.")
        return matches[0]
