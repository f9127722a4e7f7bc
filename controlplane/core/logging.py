"""Structured JSON logging: one line per event, request id bound through contextvars."""

from __future__ import annotations

import logging
import logging.config
import time

import structlog

# Never let these leak into a log line, whatever a caller passes as an event field.
REDACTED_KEYS = frozenset(
    {"authorization", "api_key", "key", "secret", "token", "password", "plaintext", "cookie"}
)


def add_timestamp(_logger, _name, event_dict):
    """Add an RFC 3339 UTC timestamp with milliseconds."""
    now = time.time()
    event_dict["ts"] = (
        time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z"
    )
    return event_dict


def redact_secrets(_logger, _name, event_dict):
    """Replace values of secret-looking keys with a marker."""
    for key in list(event_dict):
        if key.lower() in REDACTED_KEYS:
            event_dict[key] = "[redacted]"
    return event_dict


def configure_logging(config: dict) -> None:
    """Configure stdlib logging and structlog to emit JSON lines on stderr."""
    level = config.get("level", "INFO")
    shared = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        add_timestamp,
        redact_secrets,
    ]
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "formatters": {
                "json": {
                    "()": structlog.stdlib.ProcessorFormatter,
                    "processors": [
                        structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                        structlog.processors.format_exc_info,
                        structlog.processors.JSONRenderer(),
                    ],
                    "foreign_pre_chain": shared,
                }
            },
            "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "json"}},
            "root": {"handlers": ["console"], "level": level},
            "loggers": {
                "django.request": {"level": "ERROR"},
                "django.server": {"level": "WARNING"},
                "celery": {"level": level},
            },
        }
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
