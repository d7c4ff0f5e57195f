"""Presigned URLs carry credentials in their query string: this is the only way they reach a log.

Two layers. ``redact_url`` is used wherever we log a URL on purpose. ``scrub`` removes every query
string (and any credential parameter seen without one) from free text, and
``install_log_scrubbing`` applies it to every log record of every logger, at every level, before
any handler sees it (a log record factory: handlers added later, such as a CLI's or a test's, are
covered too). Libraries (urllib3's connection pool and its retry logger, botocore) put full URLs in
their messages and exception texts; those are scrubbed the same way.

The CI360 client secret is another credential: ``register_secret`` adds its value (and its base64 form,
the JWT's key) to what is scrubbed from then on; bearer tokens (JWTs) and Secrets Manager's
``SecretString`` (botocore dumps response bodies at DEBUG, before the value is known) are scrubbed by shape.
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Any
from urllib.parse import urlsplit, urlunsplit


def redact_url(url: str) -> str:
    """scheme://host/path with the query string (signature, token) and any user-info removed."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        netloc = f"{host}:{parts.port}" if parts.port else host
    except ValueError:
        return "<unparseable url>"
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


# A query string anywhere (after a full URL or a bare path, as urllib3 logs it), whatever its shape:
# ``?&a=1``, ``?versionId&X-Amz-Signature=...``, a raw ``'`` inside a value. It runs to whitespace or
# a quote that closes it (one followed by nothing a URL could continue with); a quote followed by more
# query text is part of the query.
_QUERY = re.compile(r"\?(?:[^\s\"<>'\\]|\\(?!\")|'(?=[^\s\"<>),:;\]}'\\]))+")
# Credential parameters seen without their ``?`` (a query logged on its own, botocore's header dumps
# at DEBUG: ``'X-Amz-Security-Token': b'...'``, ``Authorization: ... Credential=..., Signature=...``).
_CREDENTIAL = re.compile(
    r"(?i)\b(X-Amz-(?:Signature|Security-Token|Credential)|AWSAccessKeyId|Signature|Credential"
    r"|Authorization)(['\"]?\s*[=:]\s*b?['\"]?)[^\s&\"'<>,]+")
REDACTED = "?<redacted>"
_lock = threading.Lock()
# A JSON Web Token (header.claims.signature, each base64url; the header always starts {" -> eyJ).
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
# Secrets Manager's answer as botocore logs it (JSON in a bytes repr, or a parsed dict's repr).
_SECRET_VALUE = re.compile(r"(SecretString|SecretBinary)(['\"]?\s*[:=]\s*b?)(['\"])(?:\\+.|(?!\3).)*\3")
_secrets: set[str] = set()


def register_secret(value: str) -> None:
    """Scrub this value from every log record from now on (a secret read at run time)."""
    if len(value) >= 4:  # a shorter one would blank out ordinary text (and is no secret anyway)
        with _lock:
            _secrets.add(value)


def scrub(text: str) -> str:
    """Remove the query string of every URL in free text (exception messages, tracebacks), and every
    registered secret, bearer token and Secrets Manager value."""
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, "<redacted>")
    if "eyJ" in text:
        text = _JWT.sub("<redacted-jwt>", text)
    if "Secret" in text:
        text = _SECRET_VALUE.sub(r"\1\2\3<redacted>\3", text)
    if "?" not in text and "=" not in text and ":" not in text:
        return text
    return _CREDENTIAL.sub(r"\1\2<redacted>", _QUERY.sub(REDACTED, text))


def _scrub_value(value: Any) -> Any:
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {k: _scrub_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_scrub_value(v) for v in value) if isinstance(value, list) else \
            tuple(_scrub_value(v) for v in value)
    return value


def scrub_record(record: logging.LogRecord) -> logging.LogRecord:
    """Scrub a record in place: its message (formatted now, with its arguments), its traceback and
    stack. A structured message (a dict, as Powertools allows) keeps its shape, values scrubbed."""
    if isinstance(record.msg, str):
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: keep what the logging module would have shown
            message = f"{record.msg} {record.args!r}"
        record.msg, record.args = scrub(message), None
    elif isinstance(record.msg, dict):
        record.msg = _scrub_value(record.msg)
        record.args = _scrub_value(record.args) if record.args else record.args
    if record.exc_info and record.exc_info[0] is not None and not record.exc_text:
        record.exc_text = scrub(logging.Formatter().formatException(record.exc_info))
    elif record.exc_text:
        record.exc_text = scrub(record.exc_text)
    if record.stack_info:
        record.stack_info = scrub(record.stack_info)
    return record


_installed = False


def install_log_scrubbing() -> None:
    """Scrub every log record made in this process from now on (idempotent)."""
    global _installed
    with _lock:
        if _installed:
            return
        previous = logging.getLogRecordFactory()

        def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
            return scrub_record(previous(*args, **kwargs))

        logging.setLogRecordFactory(factory)
        _installed = True
