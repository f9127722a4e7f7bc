"""ASGI entry point: the LLM proxy (``/v1/...``) in front of the Django application."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "controlplane.settings")
django_application = get_asgi_application()

from enforcement.llm.proxy import LlmProxy  # noqa: E402 - needs the apps loaded

application = LlmProxy(django_application)
