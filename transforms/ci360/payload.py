"""The CI360 bulk webhook payload, validated into a Job.

The payload's verified shape is in CONTRACT.md. Only what the connector needs is required; anything
else CI360 or another task type adds is carried along untouched and never breaks a call.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from transforms.ci360.allowlist import OriginPattern, check_source_url
from transforms.ci360.keys import target_key, template_values
from transforms.errors import ValidationError
from transforms.schema.columns import parse_overrides
from transforms.settings import (
    BAD_VALUE_POLICIES,
    COLUMNAR_CODECS,
    PROCESSING_MODES,
    Settings,
    choice,
    parse_bool,
)


@dataclass(frozen=True)
class Job:
    """One transfer: where the audience is staged, where it goes, and how it is written."""

    occurrence_id: str
    task_id: str
    task_name: str
    tenant: str
    data_url: str = field(repr=False)
    metadata_url: str = field(repr=False)
    bucket: str
    key: str
    csv_header: bool
    column_types: Mapping[str, str] = field(default_factory=dict)  # send parameter, over the deployment's
    on_bad_value: str = "fail"
    compression: str | None = None
    processing_mode: str = "auto"
    overwrite: bool = True  # False: refuse (409) a key that already holds an object
    send_parameters: Mapping[str, str] = field(default_factory=dict)
    # What an outcome reported back to CI360 names (transforms.outcomes): the call's tracking code and
    # the tenant's id. Defaults: a job queued before these existed still runs.
    response_tracking_code: str = ""
    tenant_id: str = ""


def _section(payload: Mapping[str, Any], name: str, required: bool = True) -> Mapping[str, Any]:
    value = payload.get(name)
    if value is None and not required:
        return {}
    if not isinstance(value, dict):
        raise ValidationError(f"{name} is missing or is not an object", [{"field": name}])
    return value


MAX_ID_CHARS = 256  # identifiers are UUIDs and short names; one that is longer is not CI360's
MAX_URL_CHARS = 8192  # presigned URLs are about 1,760 characters (CONTRACT.md)


def _text(section: Mapping[str, Any], path: str, name: str, required: bool = True,
          max_chars: int | None = MAX_ID_CHARS) -> str:
    value = section.get(name)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or not value.strip():
        raise ValidationError(f"{path} is missing or is not a non-empty string", [{"field": path}])
    if max_chars is not None and len(value.strip()) > max_chars:
        # Never echoed: it would go into every log line and the error body.
        raise ValidationError(f"{path} is longer than {max_chars} characters", [{"field": path}])
    if any(0xD800 <= ord(ch) <= 0xDFFF for ch in value):  # a lone surrogate from a JSON escape
        raise ValidationError(f"{path} is not valid Unicode text", [{"field": path}])
    return value.strip()


def _url(section: Mapping[str, Any], path: str, name: str, allowlist: tuple[OriginPattern, ...]) -> str:
    url = _text(section, path, name, max_chars=MAX_URL_CHARS)
    try:
        parts = urlsplit(url)
        scheme, host = parts.scheme, parts.hostname
    except ValueError:  # urlsplit refuses some URLs outright (an unclosed "[" of an IPv6 host)
        scheme, host = "", None
    if scheme not in ("https", "http") or not host:
        # Say which field, never echo the value: it may be a live presigned URL.
        raise ValidationError(f"{path} is not an http(s) URL", [{"field": path}])
    return check_source_url(url, path, allowlist)  # before anything is fetched


def _optional_text(section: Any, name: str) -> str:
    """A field only reported back (the response tracking code): taken when it is a short string, never a
    reason to refuse a call that can land without it."""
    value = section.get(name) if isinstance(section, dict) else None
    if not isinstance(value, str) or len(value.strip()) > MAX_ID_CHARS:
        return ""
    if any(0xD800 <= ord(ch) <= 0xDFFF for ch in value):
        return ""
    return value.strip()


def utc_now() -> datetime:
    """The clock of {date} and {timestamp} in keys (tests replace it)."""
    return datetime.now(UTC)


STRING_PARAMETERS = ("s3_filename",)  # the parameters whose value must be a JSON string


def send_parameters(payload: Mapping[str, Any]) -> dict[str, str]:
    """Send parameters by name with surrounding whitespace removed (SAS's example has ``"s3_filename "``).

    Two names that are the same but for that whitespace are ambiguous: refused, never one picked.
    Values that are not strings are kept as their JSON text (``column_types`` may be sent as a JSON
    object, ``csv_header`` as ``true``), so unknown parameters of other task types cannot break a call;
    ``s3_filename`` must be a string (123 or a list would land under a name nobody wrote).
    """
    raw = _section(payload, "sendParameters")
    params: dict[str, str] = {}
    spelled: dict[str, str] = {}
    for name, value in raw.items():
        key = str(name).strip()
        if key in spelled:
            shown = key if len(key) <= 60 else key[:60] + "..."
            raise ValidationError(f"sendParameters names {shown!r} twice, differing only by surrounding "
                                  "whitespace: ambiguous", [{"field": f"sendParameters.{shown}"}])
        spelled[key] = str(name)
        if value is None:
            continue
        if key in STRING_PARAMETERS and not isinstance(value, str):
            raise ValidationError(f"sendParameters.{key} must be a string, not {type(value).__name__}",
                                  [{"field": f"sendParameters.{key}"}])
        params[key] = value if isinstance(value, str) else json.dumps(value)
    return params


def parse_job(payload: Any, settings: Settings, clock: Callable[[], datetime] | None = None) -> Job:
    """Validate a decoded webhook body; every refusal names the field at fault.

    Nothing is fetched here: both presigned URLs are checked against ``source_host_allowlist``, and
    the target key is rendered (``clock`` gives {date} and {timestamp}) and confined, first.
    """
    if not isinstance(payload, dict):
        raise ValidationError("the request body must be a JSON object")
    task = _section(payload, "task")
    tenant = _section(payload, "tenant", required=False)
    urls = _section(payload, "presignedUrls")
    params = send_parameters(payload)
    filename = params.get("s3_filename", "").strip()
    if not filename:
        raise ValidationError("sendParameters.s3_filename is missing or empty",
                              [{"field": "sendParameters.s3_filename"}])
    csv_header = settings.csv_header
    if params.get("csv_header", "").strip():
        csv_header = parse_bool("sendParameters.csv_header", params["csv_header"])
    overwrite = settings.overwrite
    if params.get("overwrite", "").strip():
        overwrite = parse_bool("sendParameters.overwrite", params["overwrite"])
    field_name = "sendParameters.{}".format
    occurrence_id = _text(task, "task.occurrenceId", "occurrenceId")
    task_id = _text(task, "task.taskId", "taskId", required=False)
    task_name = _text(task, "task.taskName", "taskName", required=False)
    tenant_name = _text(tenant, "tenant.tenantMoniker", "tenantMoniker", required=False)
    tenant_id = _text(tenant, "tenant.externalTenantId", "externalTenantId", required=False)
    tracking = _optional_text(payload.get("contactResponse"), "responseTrackingCode")
    values = template_values(occurrence_id=occurrence_id, task_id=task_id, task_name=task_name,
                             tenant=tenant_name or tenant_id, now=(clock or utc_now)())
    return Job(
        occurrence_id=occurrence_id,
        task_id=task_id,
        task_name=task_name,
        tenant=tenant_name,
        data_url=_url(urls, "presignedUrls.dataFile", "dataFile", settings.source_host_allowlist),
        metadata_url=_url(urls, "presignedUrls.metadataFile", "metadataFile", settings.source_host_allowlist),
        bucket=settings.bucket,
        key=target_key(filename, values, prefix=settings.s3_key_prefix, template=settings.key_template),
        csv_header=csv_header,
        column_types={**settings.column_types,
                      **parse_overrides(params.get("column_types", ""), field_name("column_types"))},
        on_bad_value=choice(field_name("on_bad_value"), params.get("on_bad_value", ""),
                            BAD_VALUE_POLICIES, settings.on_bad_value) or "fail",
        compression=choice(field_name("compression"), params.get("compression", ""), COLUMNAR_CODECS,
                           settings.compression),
        processing_mode=choice(field_name("processing_mode"), params.get("processing_mode", ""),
                               PROCESSING_MODES, settings.processing_mode) or "auto",
        overwrite=overwrite,
        send_parameters=params,
        response_tracking_code=tracking,
        tenant_id=tenant_id,
    )
