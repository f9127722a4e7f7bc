"""Admin building blocks shared by apps (the admin stays a thin adapter over services)."""

from __future__ import annotations

from django.template.response import TemplateResponse


class ShownOnceAdminMixin:
    """Rows a service creates with a secret shown once (API keys, SCIM tokens), never edited.

    The add page uses ``add_form``; afterwards every field is read-only. ``render_once`` shows
    the secret on a page that must not be cached; the secret is never stored.
    """

    add_form = None
    fields: list[str] = []

    def get_readonly_fields(self, request, obj=None):
        return self.fields if obj is not None else []

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

    def render_added(self, request, obj, plaintext: str) -> TemplateResponse:
        raise NotImplementedError

    def render_once(self, request, template: str, **context) -> TemplateResponse:
        context = {**self.admin_site.each_context(request), "opts": self.model._meta, **context}
        response = TemplateResponse(request, template, context)
        response["Cache-Control"] = "no-store"
        return response
