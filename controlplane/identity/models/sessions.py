"""Dashboard sessions indexed by user, so deprovisioning can end them in its own transaction."""

from __future__ import annotations

from django.contrib.sessions.base_session import AbstractBaseSession
from django.db import models


class UserSession(AbstractBaseSession):
    """Django's database session plus the signed-in user's id (``SESSION_ENGINE`` points here)."""

    user_id = models.CharField(max_length=64, blank=True, default="", db_index=True)

    class Meta:
        verbose_name = "session"

    @classmethod
    def get_session_store_class(cls):
        from controlplane.identity.sessions import SessionStore

        return SessionStore
