"""Structured JSON logs (structlog), with the request id bound and secrets redacted."""

from __future__ import annotations

import functools
import logging
import re
import sys
from collections.abc import MutableMapping
from typing import IO, Any, Final, cast

import structlog

SECRET_KEY_PATTERN = re.compile(
    r"(pass(word)?|secret|token|authorization|api_?key|cookie|code_verifier|private|credential)",
    re.IGNORECASE,
)
BEARER_PATTERN = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]+")
URL_PASSWORD_PATTERN = re.compile(r"(?i)(postgres(?:ql)?(?:\+\w+)?://[^:/@\s]+:)[^@\s]+@")
KEY_VALUE_PATTERN = re.compile(
    r"(?i)((?:api_?key|password|passwd|secret|token|code_verifier|authorization)[\w-]*['\"]?"
    r"\s*[:=]\s*['\"]?)[^'\"\s,&}]+"
)
_MAYBE_SECRET = re.compile(
    r"(?i)bearer|basic|api_?key|password|passwd|secret|token|code_verifier|authorization|postgres"
)
"""What each pattern above needs to match at all: a string without it is left as it is, unsearched
(most values of a log line: ids, counts, paths)."""
REDACTED = "[redacted]"


@functools.lru_cache(maxsize=1024)
def _secret_key(key: str) -> bool:
    """Whether a field's name says its value is a secret (the same few names on every line)."""
    return SECRET_KEY_PATTERN.search(key) is not None


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        if not _MAYBE_SECRET.search(value):
            return value
        value = BEARER_PATTERN.sub(lambda m: f"{m.group(1)} {REDACTED}", value)
        value = KEY_VALUE_PATTERN.sub(lambda m: f"{m.group(1)}{REDACTED}", value)
        return URL_PASSWORD_PATTERN.sub(lambda m: f"{m.group(1)}{REDACTED}@", value)
    if isinstance(value, dict):
        return {k: REDACTED if _secret_key(str(k)) else _redact_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_value(v) for v in value]
    return value


def redact_secrets(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """Never let a token, key or password reach a log line, whatever the caller passed."""
    for key in list(event_dict):
        if key == "event":
            event_dict[key] = _redact_value(event_dict[key])
        elif _secret_key(key):
            event_dict[key] = REDACTED
        else:
            event_dict[key] = _redact_value(event_dict[key])
    return event_dict


class RoutineJobLines(logging.Filter):
    """Leaves out procrastinate's routine lines below DEBUG: "Deferred 1 job" for every job
    enqueued (a request's access line says what it did), and "Starting job …" and "… ended with
    status: Success" for every job that goes well (the tasks log what they did: `export_pass`,
    `chart_synced`, …; and every job's status stays in `procrastinate_jobs`).

    Three lines per job that say nothing the service's own lines do not (a webhook's runner
    pass wrote them every few seconds per company); the CPU they cost is within the noise of
    `bench.job_cost` (≤ 0.2 ms of a no-op job's ~2.3 ms). A job's error, retry or abort, and
    the worker's start and stop, are kept.
    """

    ROUTINE: Final = frozenset({"jobs_deferred", "start_job", "job_success"})

    def filter(self, record: logging.LogRecord) -> bool:
        return getattr(record, "action", None) not in self.ROUTINE or not record.name.startswith(
            "procrastinate."
        )


_TIMESTAMPER = structlog.processors.TimeStamper(fmt="iso", utc=True)
_JSON = structlog.processors.JSONRenderer()
_json_handler: list[logging.Handler] = []
"""The handler `configure_logging` installed for JSON lines (none for the console format)."""


class FastLines:
    """One logger's info lines, rendered as `configure_logging` renders a structlog line in JSON
    (the same fields in the same order: the call's, `event`, the bound context, level, logger,
    timestamp; redacted alike) and written straight to its handler's stream: no LogRecord, no
    caller lookup, no processor chain. For a line written on every request (the access line).

    Wherever the lines would not go to that one handler alone (the console format, a handler or
    filter added, as pytest's log capture adds one), the line goes through structlog as any
    other; a logger below INFO writes nothing either way.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._std = logging.getLogger(name)
        self._log = structlog.get_logger(name)

    def _handler(self) -> logging.Handler | None:
        if not _json_handler:
            return None
        handler = _json_handler[0]
        logger: logging.Logger | None = self._std
        while logger is not None:
            if logger.filters or logger.disabled:
                return None
            if logger.handlers:
                return handler if logger.handlers == [handler] and logger.parent is None else None
            logger = logger.parent if logger.propagate else None
        return None

    def info(self, event: str, **fields: Any) -> None:
        if not self._std.isEnabledFor(logging.INFO):
            return
        handler = self._handler()
        if handler is None or _filters_other_lines(handler) or handler.level > logging.INFO:
            self._log.info(event, **fields)
            return
        fields["event"] = event
        line = structlog.contextvars.merge_contextvars(None, "info", fields)
        line["level"] = "info"
        line["logger"] = self.name
        line = redact_secrets(None, "info", _TIMESTAMPER(None, "info", line))
        text = cast(str, _JSON(None, "info", line))
        stream = cast(logging.StreamHandler[IO[str]], handler).stream
        handler.acquire()  # as logging.Handler.handle writes a line
        try:
            stream.write(text + "\n")
            handler.flush()
        finally:
            handler.release()


def _filters_other_lines(handler: logging.Handler) -> bool:
    """Whether a filter on the handler might drop or change a line other than procrastinate's."""
    return any(not isinstance(f, RoutineJobLines) for f in handler.filters)


def configure_logging(
    level: str = "INFO", fmt: str = "json", stream: IO[str] | None = None
) -> None:
    """Route structlog and the standard library (uvicorn, procrastinate) through one renderer."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.format_exc_info,
        redact_secrets,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        # A module's logger is built once, not on every line (the processors are the same for
        # every format; the level and the output are the standard library's, read per line).
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    _json_handler[:] = [handler] if fmt == "json" else []
    root.setLevel(level.upper())
    if root.level > logging.DEBUG:
        handler.addFilter(RoutineJobLines())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "procrastinate"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
    # One access log line per request comes from our middleware instead.
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)
    logging.getLogger("procrastinate").setLevel(max(logging.INFO, root.level))
    logging.getLogger("httpx").setLevel(logging.WARNING)
