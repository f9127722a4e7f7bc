"""Serializer building blocks shared by every API: strict bodies and USD money fields."""

from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from controlplane.core.money import MoneyError, format_usd, parse_usd


class StrictSerializer(serializers.Serializer):
    """Rejects fields it does not declare, so a typo never silently changes behaviour."""

    def to_internal_value(self, data):
        if isinstance(data, dict):
            unknown = sorted(set(data) - set(self.fields))
            if unknown:
                raise serializers.ValidationError(
                    {
                        name: ["Unknown field; check the spelling against /api/docs/."]
                        for name in unknown
                    }
                )
        return super().to_internal_value(data)


@extend_schema_field({"type": "string", "pattern": r"^-?\d+(\.\d{1,6})?$", "example": "120.00"})
class UsdField(serializers.Field):
    """A USD decimal string in the API, integer micro-dollars inside."""

    default_error_messages = {"invalid": "{message}"}

    def __init__(self, *, allow_negative: bool = False, **kwargs):
        self.allow_negative = allow_negative
        super().__init__(**kwargs)

    def to_internal_value(self, data) -> int:
        try:
            return parse_usd(data, allow_negative=self.allow_negative)
        except MoneyError as exc:
            self.fail("invalid", message=str(exc))

    def to_representation(self, value: int) -> str:
        return format_usd(value)


@extend_schema_field(OpenApiTypes.STR)
class PrintableKeyField(serializers.CharField):
    """An identifier-like string of printable ASCII (idempotency keys, labels)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("max_length", 255)
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        if not value.isprintable() or not value.isascii():
            raise serializers.ValidationError("Use printable ASCII characters only.")
        return value
