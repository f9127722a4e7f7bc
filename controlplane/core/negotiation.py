"""Content negotiation that never fails a request over its Accept header: we only speak JSON."""

from rest_framework.negotiation import DefaultContentNegotiation


class LenientContentNegotiation(DefaultContentNegotiation):
    def select_renderer(self, request, renderers, format_suffix=None):
        """Pick by Accept when possible, else fall back to the first renderer (JSON)."""
        try:
            return super().select_renderer(request, renderers, format_suffix)
        except Exception:  # NotAcceptable: answer in JSON rather than 406 to a webhook caller.
            return renderers[0], renderers[0].media_type
