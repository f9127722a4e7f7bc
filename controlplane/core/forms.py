"""Form fields shared by the admin and the dashboard: money is typed and shown in USD."""

from __future__ import annotations

from django import forms
from django.forms.widgets import TextInput

from controlplane.core.money import MoneyError, format_usd, parse_usd


class UsdField(forms.CharField):
    """A USD decimal string in the form ("1500.00"), micro-dollars in ``cleaned_data``."""

    widget = TextInput(attrs={"inputmode": "decimal", "autocomplete": "off"})

    def __init__(self, *, allow_negative: bool = False, **kwargs):
        kwargs.setdefault("help_text", 'US dollars, e.g. "1500.00" (at most 6 decimals).')
        self.allow_negative = allow_negative
        super().__init__(**kwargs)

    def prepare_value(self, value):
        if isinstance(value, int) and not isinstance(value, bool):
            return format_usd(value)
        return value

    def to_python(self, value):
        text = (super().to_python(value) or "").strip().replace(",", "")
        if text in self.empty_values:
            return None
        if len(text) > 20:
            raise forms.ValidationError("Too long for an amount.", code="invalid")
        try:
            return parse_usd(text, allow_negative=self.allow_negative)
        except MoneyError as exc:
            raise forms.ValidationError(str(exc), code="invalid") from exc

    def has_changed(self, initial, data):
        try:
            return self.to_python(data) != initial
        except forms.ValidationError:
            return True
