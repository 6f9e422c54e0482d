"""Logging set-up for the CLI; library modules only ever call ``logging.getLogger(__name__)``."""

from __future__ import annotations

import logging.config

from aiohttp.http_exceptions import HttpProcessingError


class MalformedRequests(logging.Filter):
    """aiohttp logs a request it cannot parse as an ERROR with a traceback, and the offending
    line (an Authorization header, say) in the message. It is the client's fault and common on
    a public port: one WARNING line naming the client and the kind of fault, nothing it sent."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, HttpProcessingError):
            fault = (error.message or "malformed request").splitlines()[0].rstrip(": ")
            record.msg, record.args = f"{record.getMessage()}: {fault} (answered 400)", None
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.exc_info, record.exc_text = None, None
        return True


def configure_logging(level: str = "INFO") -> None:
    logging.config.dictConfig(
        {
            "version": 1,
            "disable_existing_loggers": False,
            "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
            "filters": {"malformed": {"()": MalformedRequests}},
            "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "plain"}},
            "root": {"handlers": ["stderr"], "level": level},
            "loggers": {
                "aiohttp.access": {"level": "WARNING"},
                "aiohttp.server": {"filters": ["malformed"]},
            },
        }
    )
