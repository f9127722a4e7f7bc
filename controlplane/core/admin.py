"""Admin building blocks shared by apps (the admin stays a thin adapter over services): money
shown and typed in USD, never in micro-dollars; secrets shown once."""

from __future__ import annotations

from django.contrib import admin
from django.template.response import TemplateResponse

from controlplane.core.money import format_usd

SUFFIX = "_micros"


def usd_text(micros: int | None) -> str:
    """Micro-dollars as "1,234.50 USD" ("—" for none)."""
    if micros is None:
        return "—"
    text = format_usd(micros)
    sign = "-" if text.startswith("-") else ""
    whole, _, frac = text.lstrip("-").partition(".")
    return f"{sign}{int(whole):,}.{frac} USD"


def usd_display(field_name: str, label: str | None = None, *, sortable: bool = True):
    """An admin column/readonly field rendering ``obj.<field_name>`` as "1,234.50 USD"."""
    base = field_name.removesuffix(SUFFIX).replace("_", " ")

    def render(*args):  # (admin, obj) as a class attribute, (obj) when set on an instance
        return usd_text(getattr(args[-1], field_name, None))

    return admin.display(
        description=label or f"{base} (USD)", ordering=field_name if sortable else None
    )(render)


class UsdFieldsMixin:
    """Show each read-only ``x_micros`` field as an ``x_usd`` display (editable ones use
    ``controlplane.core.forms.UsdField`` in the form instead)."""

    def get_fields(self, request, obj=None):
        fields = super().get_fields(request, obj)
        if not self.has_change_permission(request, obj):
            return [self._usd_name(name) for name in fields]
        readonly = set(super().get_readonly_fields(request, obj))
        return [self._usd_name(name) if name in readonly else name for name in fields]

    def get_readonly_fields(self, request, obj=None):
        names = [self._usd_name(name) for name in super().get_readonly_fields(request, obj)]
        if not self.has_change_permission(request, obj):
            names += [self._usd_name(n) for n in self._micro_fields()]
        return list(dict.fromkeys(names))

    def _micro_fields(self) -> list[str]:
        return [f.name for f in self.model._meta.concrete_fields if f.name.endswith(SUFFIX)]

    def _usd_name(self, name) -> str:
        if isinstance(name, str) and name.endswith(SUFFIX):
            usd_name = name.removesuffix(SUFFIX) + "_usd"
            if not hasattr(self, usd_name):
                setattr(self, usd_name, usd_display(name))
            return usd_name
        return name


class ShownOnceAdminMixin:
    """Rows a service creates with a secret shown once (API keys, SCIM tokens), never edited.

    The add page uses ``add_form``; afterwards every field is read-only. ``render_once`` shows
    the secret on a page that must not be cached; the secret is never stored. Each admin using
    it defines ``render_added(request, obj, plaintext)``, the page shown after the add.
    """

    add_form = None
    fields: list[str] = []

    def get_readonly_fields(self, request, obj=None):
        return self.fields if obj is not None else []

    def has_delete_permission(self, request, obj=None):
        return False  # revoked (an action), never deleted: the ledger names them

    def get_form(self, request, obj=None, **kwargs):
        if obj is None:
            kwargs["form"] = self.add_form
            kwargs["fields"] = self.add_form.Meta.fields
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request, obj=None):
        return self.fields if obj is not None else self.add_form.Meta.fields

    def save_related(self, request, form, formsets, change):
        return  # no m2m or inlines: the service wrote everything

    def response_add(self, request, obj, post_url_continue=None):
        plaintext = getattr(obj, "_plaintext_once", None)  # set by save_model, never stored
        if plaintext is None:
            return super().response_add(request, obj, post_url_continue)
        return self.render_added(request, obj, plaintext)

    def render_once(self, request, template: str, **context) -> TemplateResponse:
        context = {**self.admin_site.each_context(request), "opts": self.model._meta, **context}
        response = TemplateResponse(request, template, context)
        response["Cache-Control"] = "no-store"
        return response
