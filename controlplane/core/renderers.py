"""Renderers: problem+json is JSON with its own media type, so clients may ask for it."""

from rest_framework.renderers import JSONRenderer


class ProblemJSONRenderer(JSONRenderer):
    media_type = "application/problem+json"
    format = "problem+json"
