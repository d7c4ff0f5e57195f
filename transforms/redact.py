"""Presigned URLs carry credentials in their query string: this is the only way they reach a log."""

from __future__ import annotations

import re
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


# A query string (``?name=value...``) anywhere: after a full URL or after a bare path as urllib3 logs it.
_QUERY = re.compile(r"\?[\w.~%-]+=[^\s\"'<>]*")


def scrub(text: str) -> str:
    """Remove the query string of every URL in free text (exception messages, tracebacks).

    A last line of defence: libraries such as urllib3 put the full URL in their exception texts.
    """
    return _QUERY.sub("?<redacted>", text)
