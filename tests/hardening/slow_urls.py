"""The real routes plus test-only views that never finish by themselves (never in production)."""

import os
import time

from django.http import JsonResponse
from django.urls import path

from controlplane.urls import urlpatterns as real_urlpatterns


def spin(request):
    """A pure-Python loop that never ends (like the issue's line-mapping hang)."""
    n = 0
    while True:
        n += 1


def block(request):
    """Blocked inside C code, where no exception can be delivered."""
    time.sleep(3600)
    return JsonResponse({})


def pid(request):
    return JsonResponse({"pid": os.getpid()})


urlpatterns = [
    path("__test__/spin", spin),
    path("__test__/block", block),
    path("__test__/pid", pid),
    *real_urlpatterns,
]
