"""``SESSION_ENGINE``: Django's database sessions, each row tagged with its user's id.

Identical to ``django.contrib.sessions.backends.db`` except for the indexed ``user_id`` column
(Django's documented way to extend it), which lets ``user_sessions_end`` delete one person's
sessions in a single statement inside the deprovisioning transaction.
"""

from __future__ import annotations

from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.backends.db import SessionStore as DBStore


class SessionStore(DBStore):
    @classmethod
    def get_model_class(cls):
        from controlplane.identity.models import UserSession

        return UserSession

    def create_model_instance(self, data):
        instance = super().create_model_instance(data)
        instance.user_id = str(data.get(SESSION_KEY) or "")[:64]
        return instance
