"""Dashboard forms: input parsing only; every write goes to a service."""

from __future__ import annotations

from django import forms
from django.utils import timezone

from enforcement.models.decisions import OUTCOMES


class VoteForm(forms.Form):
    vote = forms.ChoiceField(choices=[("approve", "Approve"), ("deny", "Deny")])
    comment = forms.CharField(
        required=False,
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
        help_text="Recorded with your vote on the ledger.",
    )


class DecisionFilterForm(forms.Form):
    outcome = forms.ChoiceField(
        required=False, choices=[("", "Any outcome")] + [(o, o) for o in OUTCOMES]
    )
    project = forms.ChoiceField(required=False, choices=[("", "Any project")])
    environment = forms.RegexField(required=False, regex=r"^[A-Za-z0-9_.-]{1,63}$", max_length=63)
    source = forms.RegexField(required=False, regex=r"^[a-z][a-z0-9_.-]{0,31}$", max_length=32)
    since = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="Inclusive.",
    )
    before = forms.RegexField(required=False, regex=r"^dec_[0-9a-z]{26}$", widget=forms.HiddenInput)

    def __init__(self, *args, projects=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["project"].choices = [("", "Any project")] + [(p, p) for p in projects]


class SimulationForm(forms.Form):
    version = forms.ChoiceField(
        required=False,
        label="Policy version",
        help_text="Or paste a document below instead.",
    )
    document = forms.CharField(
        required=False,
        label="Draft document (YAML or JSON)",
        widget=forms.Textarea(attrs={"rows": 10, "spellcheck": "false"}),
    )
    since = forms.DateField(widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(
        widget=forms.DateInput(attrs={"type": "date"}), help_text="Inclusive; at most 93 days."
    )

    def __init__(self, *args, versions=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["version"].choices = [("", "— paste a draft below —")] + [
            (str(v), label) for v, label in versions
        ]

    def clean(self):
        data = super().clean()
        if bool(data.get("version")) == bool((data.get("document") or "").strip()):
            raise forms.ValidationError("Choose a version or paste a document (one of the two).")
        if data.get("since") and data.get("until") and data["since"] > data["until"]:
            self.add_error("until", "Must not be before the start.")
        return data


class PolicyDraftForm(forms.Form):
    document = forms.CharField(
        label="New draft (YAML or JSON)",
        widget=forms.Textarea(attrs={"rows": 14, "spellcheck": "false"}),
    )


class PersonalKeyForm(forms.Form):
    name = forms.CharField(max_length=200, help_text="Where you will use it, e.g. 'laptop CLI'.")
    scopes = forms.MultipleChoiceField(widget=forms.CheckboxSelectMultiple)
    expires_at = forms.DateField(
        required=False,
        label="Expires on",
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text="Optional; the key stops working at 00:00 UTC that day.",
    )

    def __init__(self, *args, scopes=(), **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["scopes"].choices = list(scopes)

    def clean_expires_at(self):
        value = self.cleaned_data.get("expires_at")
        if value is not None and value <= timezone.now().date():
            raise forms.ValidationError("Must be after today.")
        return value
