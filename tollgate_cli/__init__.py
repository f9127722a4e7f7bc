"""Tollgate's command line for CI pipelines (``python -m tollgate_cli`` or ``tollgate``)."""
