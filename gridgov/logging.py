"""JSON logs, one line per record, carrying the request id of the request that logged it.

No log line carries personal data: database errors put row contents and SQL parameters into
their messages (PostgreSQL's ``DETAIL:  Failing row contains (…)`` or ``Key (phone)=(…)``,
SQLAlchemy's ``[parameters: …]``), and tracebacks repeat them. ``redact`` cuts those parts out;
``configure_logging`` applies it to every record (a record factory, so handlers added later —
uvicorn's — are covered too) and to every handler it knows (a filter), exception text included.
"""

from __future__ import annotations

import contextvars
import itertools
import json
import logging
import os
import re
import sys
from datetime import UTC, datetime
from typing import Any

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "request_id", default=None
)


class _RequestIds:
    """Request ids of 32 hex digits (as long as a UUID's): 16 random ones drawn once per process
    (again after a fork), then a counter. Unique without a system call per request, which
    ``uuid4()`` makes (it reads os.urandom)."""

    def __init__(self) -> None:
        self._pid = -1
        self._prefix = ""
        self._counter = itertools.count()

    def next(self) -> str:
        if self._pid != os.getpid():
            self._pid, self._prefix = os.getpid(), os.urandom(8).hex()
            self._counter = itertools.count()
        return f"{self._prefix}{next(self._counter):016x}"


new_request_id = _RequestIds().next


REDACTED = "[已隐去]"
# Where a database error's values end: the next part of the message or of the traceback.
_PART_END = (
    r"(?=\n\n|\n\[SQL|\n\[parameters|\n\(Background|\n(?:HINT|CONTEXT|DETAIL):"
    r"|\nTraceback|\Z)"
)
_REDACTIONS: list[tuple[re.Pattern[str], str]] = [
    # PostgreSQL's DETAIL (failing row, key values) and CONTEXT (e.g. the COPY line it read).
    (re.compile(r"\b(DETAIL|CONTEXT):[ \t]*.*?" + _PART_END, re.S), r"\1:  " + REDACTED),
    (re.compile(r"Failing row contains [^\n]*"), "Failing row contains " + REDACTED),
    (re.compile(r"\bKey \([^\n]*?\)=\([^\n]*"), "Key " + REDACTED),
    # SQLAlchemy's bound parameters (the engine also runs with hide_parameters=True).
    (re.compile(r"\[parameters: .*?\]" + _PART_END, re.S), "[parameters: " + REDACTED + "]"),
    (
        re.compile(r"\[parameters: (?!" + re.escape(REDACTED) + r")[^\n]*"),
        "[parameters: " + REDACTED + "]",
    ),
]


_MARKERS = ("DETAIL", "CONTEXT", "parameters", "Failing row", "Key (")


def redact(text: str) -> str:
    """``text`` without the row contents and SQL parameters database errors carry."""
    if not any(marker in text for marker in _MARKERS):
        return text
    for pattern, replacement in _REDACTIONS:
        text = pattern.sub(replacement, text)
    return text


def redact_record(record: logging.LogRecord) -> logging.LogRecord:
    """The record with its message, exception text and stack redacted (once)."""
    if getattr(record, "_redacted", False):
        return record
    try:
        message = record.getMessage()
    except Exception:  # a bad format string: logging reports it itself when formatting
        message = None
    if message is not None and (clean := redact(message)) != message:
        record.msg, record.args = clean, None
    if record.exc_info and not record.exc_text:
        record.exc_text = _PLAIN.formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = redact(record.exc_text)
    if record.stack_info:
        record.stack_info = redact(record.stack_info)
    record._redacted = True
    return record


_PLAIN = logging.Formatter()


class RedactingFilter(logging.Filter):
    """Installed on every handler: redacts records that did not come through the factory."""

    def filter(self, record: logging.LogRecord) -> bool:
        redact_record(record)
        return True


def _install_record_factory() -> None:
    current = logging.getLogRecordFactory()
    if getattr(current, "_gridgov_redacting", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        return redact_record(current(*args, **kwargs))

    factory._gridgov_redacting = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


def _filter_handlers(loggers: list[logging.Logger]) -> None:
    for logger in loggers:
        for handler in logger.handlers:
            if not any(isinstance(f, RedactingFilter) for f in handler.filters):
                handler.addFilter(RedactingFilter())


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if rid := request_id_var.get():
            out["request_id"] = rid
        for key in ("method", "path", "status", "duration_ms", "user"):
            if (value := getattr(record, key, None)) is not None:
                out[key] = value
        if record.exc_info:
            out["exc"] = record.exc_text or redact(self.formatException(record.exc_info))
        return json.dumps(out, ensure_ascii=False)


def configure_logging(level: str = "INFO", as_json: bool = True) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if as_json:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # uvicorn's access log duplicates ours (which has the request id).
    logging.getLogger("uvicorn.access").disabled = True
    logging.getLogger("alembic").setLevel(max(logging.WARNING, root.level))
    _install_record_factory()
    names = ("uvicorn", "uvicorn.error", "uvicorn.access", "gunicorn.error")
    _filter_handlers([root, *(logging.getLogger(n) for n in names)])
