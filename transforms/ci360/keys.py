"""Target object keys: what S3 and Athena can live with, rendered from templates and confined.

The key of a landing is ``s3_key_prefix`` + ``key_template`` (default ``{s3_filename}``) with the
``s3_filename`` send parameter rendered into it. Both templates may use the placeholders below, so
that a recurring task does not overwrite its previous run. Substituted values are made key-safe
(``AWS S3 Upload`` -> ``AWS_S3_Upload``): a value can never add a ``/`` segment, a ``..`` or a
control character. ``{{`` and ``}}`` stand for literal braces.
"""

from __future__ import annotations

import re
import string
import unicodedata
from collections.abc import Mapping
from datetime import UTC, datetime

from transforms.errors import ValidationError

MAX_KEY_BYTES = 1024
_INVISIBLE = {"Cf", "Zl", "Zp"}  # format characters (bidi controls, zero-width), line/paragraph separators
PLACEHOLDERS = ("occurrenceId", "taskId", "taskName", "tenant", "date", "timestamp")
FILENAME_PLACEHOLDER = "s3_filename"  # key_template only: the rendered send parameter
_UNSAFE_RUN = re.compile(r"[^A-Za-z0-9._-]+")


def validate_key(key: str, name: str = "sendParameters.s3_filename") -> str:
    """Refuse keys that S3 rejects or that would land somewhere other than the user meant."""
    field = [{"field": name}]
    if not key:
        raise ValidationError(f"{name} is empty", field)
    if key.startswith("/"):
        raise ValidationError(f"{name} must not start with '/'", field)
    if any(ord(ch) < 32 or 127 <= ord(ch) < 160 for ch in key):
        raise ValidationError(f"{name} must not contain control characters", field)
    if any(0xD800 <= ord(ch) <= 0xDFFF for ch in key):
        raise ValidationError(f"{name} is not valid Unicode text", field)
    if any(unicodedata.category(ch) in _INVISIBLE for ch in key):
        # Bidi overrides, zero-width characters, line and paragraph separators: a key that reads as
        # another in a console or a log is refused rather than silently cleaned.
        raise ValidationError(f"{name} must not contain invisible Unicode format characters or line and "
                              "paragraph separators", field)
    if "\\" in key:
        raise ValidationError(f"{name} must not contain a backslash (S3 separates folders with '/')", field)
    if "//" in key:
        raise ValidationError(f"{name} must not contain '//' (an empty folder name)", field)
    if any(segment in ("..", ".") for segment in key.split("/")):
        raise ValidationError(f"{name} must not contain '.' or '..' segments", field)
    if key.endswith("/"):
        raise ValidationError(f"{name} must name an object, not a folder", field)
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        raise ValidationError(f"{name} is longer than S3's {MAX_KEY_BYTES}-byte limit", field)
    return key


def key_safe(value: str) -> str:
    """A placeholder's value as one harmless piece of a key: ``[A-Za-z0-9._-]``, never empty or dots."""
    safe = _UNSAFE_RUN.sub("_", value.strip())
    return "_" if not safe.strip(".") else safe


def parse_template(template: str, name: str,
                   allowed: tuple[str, ...] = PLACEHOLDERS) -> list[tuple[bool, str]]:
    """Split a template into (is_placeholder, text) pieces with ``string.Formatter``'s own parser (so
    ``{{`` and ``}}`` are literal braces, as in str.format); refuse unknown names and stray braces."""
    field = [{"field": name}]
    unopened = ValidationError(f"{name} has a '}}' without its '{{' (write '}}}}' for a literal brace)",
                               field)
    unclosed = ValidationError(f"{name} has a '{{' without its '}}' (write '{{{{' for a literal brace)",
                               field)
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:  # "Single '}' encountered ...", "expected '}' before end of string", ...
        raise (unopened if "Single '}'" in str(exc) else unclosed) from None
    pieces: list[tuple[bool, str]] = []
    for literal, placeholder, spec, conversion in parsed:
        if literal:
            if pieces and not pieces[-1][0]:
                pieces[-1] = (False, pieces[-1][1] + literal)  # parse() splits a literal at each {{ or }}
            else:
                pieces.append((False, literal))
        if placeholder is None:
            continue
        written = placeholder + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "")
        if "{" in written:  # a nested field, as in {x:{y}}
            raise unclosed
        if written not in allowed:  # also refuses {}, {0}, {a.b}, {date:%Y} and {tenant!r}
            shown = written if len(written) <= 40 else written[:40] + "..."
            raise ValidationError(f"{name} uses the unknown placeholder {{{shown}}}; the known ones are "
                                  + ", ".join("{" + p + "}" for p in allowed), field)
        pieces.append((True, placeholder))
    return pieces


def template_values(*, occurrence_id: str, task_id: str, task_name: str, tenant: str,
                    now: datetime) -> dict[str, str]:
    """The placeholders' values for one job, key-safe; ``now`` is taken in UTC."""
    moment = now.astimezone(UTC) if now.tzinfo else now.replace(tzinfo=UTC)
    return {
        "occurrenceId": key_safe(occurrence_id),
        "taskId": key_safe(task_id),
        "taskName": key_safe(task_name),
        "tenant": key_safe(tenant),
        "date": moment.strftime("%Y-%m-%d"),
        "timestamp": moment.strftime("%Y%m%dT%H%M%SZ"),
    }


def render(template: str, name: str, values: Mapping[str, str],
           allowed: tuple[str, ...] = PLACEHOLDERS) -> str:
    """Fill a template's placeholders from ``values`` (already key-safe, except ``s3_filename``)."""
    return "".join(values[text] if placeholder else text
                   for placeholder, text in parse_template(template, name, allowed))


def check_prefix(prefix: str) -> str:
    """``s3_key_prefix`` (a deployment setting): a literal folder, ending in ``/`` (added if missing).

    Without the ``/``, a prefix ``exports`` and a name ``-x/y.csv`` would make ``exports-x/y.csv``: a
    key beside the prefix rather than under it, which the connector's IAM policy (``prefix*``) allows.
    """
    if not prefix:
        return prefix
    if not prefix.endswith("/"):
        prefix += "/"
    if "{" in prefix or "}" in prefix:
        raise ValueError("s3_key_prefix is literal: put placeholders in key_template instead")
    if any(segment in (".", "..") for segment in prefix.split("/")):
        raise ValueError("s3_key_prefix must not contain '.' or '..' segments")
    try:
        validate_key(prefix + "x", "s3_key_prefix")
    except ValidationError as exc:
        raise ValueError(exc.message) from None
    return prefix


def check_key_template(template: str) -> str:
    """``key_template`` (a deployment setting): must place ``{s3_filename}`` and render a valid key."""
    try:
        pieces = parse_template(template, "key_template", PLACEHOLDERS + (FILENAME_PLACEHOLDER,))
        if (True, FILENAME_PLACEHOLDER) not in pieces:
            raise ValueError("key_template must contain {s3_filename}, which carries the format's extension")
        sample = {p: "x" for p in PLACEHOLDERS} | {FILENAME_PLACEHOLDER: "x.csv"}
        validate_key(render(template, "key_template", sample, PLACEHOLDERS + (FILENAME_PLACEHOLDER,)),
                     "key_template")
    except ValidationError as exc:
        raise ValueError(exc.message) from None
    return template


def target_key(filename: str, values: Mapping[str, str], *, prefix: str = "",
               template: str | None = None, name: str = "sendParameters.s3_filename") -> str:
    """The object key: ``prefix`` + ``template`` with ``{s3_filename}`` = ``filename`` rendered.

    Every violation is a ``ValidationError`` naming ``name``: the send parameter is the one part of
    the key that changes per call (the prefix and the template were checked at start-up).
    """
    rendered = validate_key(render(filename, name, values), name)
    if template:
        rendered = render(template, "key_template", {**values, FILENAME_PLACEHOLDER: rendered},
                          PLACEHOLDERS + (FILENAME_PLACEHOLDER,))
    key = prefix + rendered
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        raise ValidationError(f"the target key (s3_key_prefix, key_template and {name} together) is "
                              f"longer than S3's {MAX_KEY_BYTES}-byte limit", [{"field": name}])
    validate_key(key, name)
    if not key.startswith(prefix):  # by construction; kept as the invariant the IAM policy relies on
        raise ValidationError(f"{name} would land outside s3_key_prefix", [{"field": name}])
    return key
