"""Deployment settings, read once from the environment.

Names are lowercase to match SAS's own connector (``s3_bucket_name``), so an existing deployment's
configuration carries over unchanged.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field

from transforms.allowlist import DEFAULT_ALLOWLIST, DEFAULT_PATTERNS, OriginPattern, parse_allowlist
from transforms.errors import ConfigurationError, ValidationError
from transforms.formats import BAD_VALUE_POLICIES, COLUMNAR_CODECS
from transforms.keys import check_key_template, check_prefix
from transforms.schema import parse_overrides

PROCESSING_MODES = ("sync", "async", "auto")
MAX_CONNECTIONS = 32  # the HTTP source's pool keeps this many connections per host
# What the sink asks S3 for: nothing (the bucket's default encryption applies; S3 always encrypts, with
# SSE-S3 at least), SSE-S3 forced, or SSE-KMS under kms_key_id.
ENCRYPTIONS = ("bucket-default", "sse-s3", "sse-kms")
_TRUE = {"1", "true", "yes", "y", "on"}
_FALSE = {"0", "false", "no", "n", "off"}


def parse_bool(name: str, value: str) -> bool:
    """Read a yes/no setting; anything unrecognised is refused rather than guessed."""
    text = value.strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValidationError(f"{name} must be true or false, not {value!r}", [{"field": name}])


def choice(name: str, value: str, allowed: tuple[str, ...], default: str | None) -> str | None:
    """One of a fixed set of words, case-insensitive; empty means the default."""
    text = value.strip().lower()
    if not text:
        return default
    if text not in allowed:
        raise ValidationError(f"{name} must be one of {', '.join(allowed)}, not {value!r}", [{"field": name}])
    return text


def _int(env: Mapping[str, str], name: str, default: int, minimum: int, maximum: int | None = None) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigurationError(f"environment setting {name} must be an integer") from None
    if value < minimum:
        raise ConfigurationError(f"environment setting {name} must be at least {minimum}")
    if maximum is not None and value > maximum:
        raise ConfigurationError(f"environment setting {name} must be at most {maximum}")
    return value


def _resource(env: Mapping[str, str], name: str, local: bool) -> str | None:
    """The job queue or a record table, by name; None when not used.

    A local invoke (``serverless invoke local`` sets IS_LOCAL) uses one only when it was named in the
    environment of that command: serverless.yml passes that as ``local_<name>`` (empty when not named)
    next to ``<name>``, which defaults to the stack's own. So the first local invoke needs nothing but
    ``s3_bucket_name``, and never sends a job to a deployed stack's queue by surprise. Deployed, the
    stack's resources are always named; a missing table is then an error, never a silent skip.
    """
    value = env.get(f"local_{name}", env.get(name, "")) if local else env.get(name, "")
    return value.strip() or None


def _float(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigurationError(f"environment setting {name} must be a number") from None
    if value <= 0:
        raise ConfigurationError(f"environment setting {name} must be positive")
    return value


@dataclass(frozen=True)
class Settings:
    """What a deployment decides; send parameters may override the per-job ones (csv_header)."""

    bucket: str
    csv_header: bool = True
    result_url_ttl: int = 0
    part_size: int = 8 * 1024 * 1024  # memory: (upload_concurrency + 1) parts at most
    upload_concurrency: int = 4
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    gzip_level: int = 1  # fastest: a .gz target keeps pace with the network; 6 saves ~15% more
    column_types: Mapping[str, str] = field(default_factory=dict)  # deployment-wide type overrides
    on_bad_value: str = "fail"
    compression: str | None = None
    row_group_bytes: int = 32 * 1024 * 1024  # Arrow memory: about 13 MB of snappy Parquet
    resume_attempts: int = 5  # Range requests after a dropped download, with exponential backoff
    # The data file as consecutive byte ranges over this many connections (1: one GET, as before).
    download_connections: int = 8
    download_range_bytes: int = 4 * 1024 * 1024  # memory: (connections + 1) ranges at most
    progress_interval_s: float = 10.0  # seconds between progress log lines
    glue_database: str | None = None  # register each landed folder as an Athena table when set
    kms_key_id: str | None = None  # SSE-KMS under this key when set (and encryption is not bucket-default)
    encryption: str | None = None  # one of ENCRYPTIONS; None: derived from kms_key_id (encryption_setting)
    # Asynchronous processing and exactly-once landing (each is off when its resource is not named).
    processing_mode: str = "auto"  # sync, async, or auto: by the data file's size
    sync_max_bytes: int = 100 * 1000 * 1000  # in auto, larger files go to the queue
    jobs_queue: str | None = None  # the job queue: its name (looked up once) or its URL
    jobs_table: str | None = None
    idempotency_table: str | None = None
    idempotency_hours: int = 72  # how long a repeated webhook gets the first call's result
    deadline_margin_s: float = 20.0  # stop this long before the function's time limit
    local: bool = False  # run by `serverless invoke local` (IS_LOCAL): see _resource
    # Safe inputs: where presigned URLs may point, and where (and whether) objects may be written.
    source_host_allowlist: tuple[OriginPattern, ...] = DEFAULT_PATTERNS
    s3_key_prefix: str = ""  # every key starts with this (literal)
    key_template: str | None = None  # e.g. ci360/{taskName}/dt={date}/{s3_filename}
    overwrite: bool = True  # false: an existing key is refused with 409 (send parameter overrides)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        local = env.get("IS_LOCAL", "").strip().lower() in _TRUE
        bucket = env.get("s3_bucket_name", "").strip()
        if not bucket:
            raise ConfigurationError("environment setting s3_bucket_name (the target bucket) is not set")
        csv_header = env.get("csv_header", "").strip()
        try:
            header = parse_bool("csv_header", csv_header) if csv_header else True
        except ValidationError as exc:
            raise ConfigurationError(f"environment setting {exc.message}") from None
        gzip_level = _int(env, "gzip_level", 1, 1)
        if gzip_level > 9:
            raise ConfigurationError("environment setting gzip_level must be between 1 and 9")
        try:
            column_types = parse_overrides(env.get("column_types", ""), "column_types")
            on_bad_value = choice("on_bad_value", env.get("on_bad_value", ""), BAD_VALUE_POLICIES, "fail")
            compression = choice("compression", env.get("compression", ""), COLUMNAR_CODECS, None)
            encryption = choice("encryption", env.get("encryption", ""), ENCRYPTIONS, None)
            processing_mode = choice("processing_mode", env.get("processing_mode", ""), PROCESSING_MODES,
                                     "auto")
            overwrite_text = env.get("overwrite", "").strip()
            overwrite = parse_bool("overwrite", overwrite_text) if overwrite_text else True
        except ValidationError as exc:
            raise ConfigurationError(f"environment setting {exc.message}") from None
        kms_key_id = env.get("kms_key_id", "").strip() or None
        try:
            allowlist = parse_allowlist(env.get("source_host_allowlist", "").strip() or DEFAULT_ALLOWLIST)
            key_prefix = check_prefix(env.get("s3_key_prefix", "").strip())
            key_template = env.get("key_template", "").strip() or None
            if key_template:
                check_key_template(key_template)
        except ValueError as exc:
            raise ConfigurationError(f"environment setting {exc}") from None
        return cls(
            source_host_allowlist=allowlist,
            s3_key_prefix=key_prefix,
            key_template=key_template,
            overwrite=overwrite,
            bucket=bucket,
            column_types=column_types,
            on_bad_value=on_bad_value,  # type: ignore[arg-type]
            compression=compression,
            row_group_bytes=_int(env, "row_group_mb", 32, 1) * 1024 * 1024,
            resume_attempts=_int(env, "resume_attempts", 5, 0),
            download_connections=_int(env, "download_connections", 8, 1, maximum=MAX_CONNECTIONS),
            download_range_bytes=_int(env, "download_range_mb", 4, 1) * 1024 * 1024,
            progress_interval_s=_float(env, "progress_interval_s", 10.0),
            glue_database=env.get("glue_database", "").strip() or None,
            kms_key_id=kms_key_id,
            encryption=encryption_setting(encryption, kms_key_id),
            processing_mode=processing_mode or "auto",
            sync_max_bytes=_int(env, "sync_max_mb", 100, 0) * 1000 * 1000,
            local=local,
            jobs_queue=_resource(env, "jobs_queue", local),
            jobs_table=_resource(env, "jobs_table", local),
            idempotency_table=_resource(env, "idempotency_table", local),
            idempotency_hours=_int(env, "idempotency_hours", 72, 1),
            deadline_margin_s=_float(env, "deadline_margin_s", 20.0),
            csv_header=header,
            result_url_ttl=_int(env, "result_url_ttl", 0, 0),
            # S3 refuses multipart parts under 5 MiB (except the last).
            part_size=_int(env, "part_size_mb", 8, 5) * 1024 * 1024,
            upload_concurrency=_int(env, "upload_concurrency", 4, 1),
            connect_timeout=_float(env, "connect_timeout", 10.0),
            read_timeout=_float(env, "read_timeout", 60.0),
            gzip_level=gzip_level,
        )


def encryption_setting(chosen: str | None, kms_key_id: str | None) -> str:
    """Unset: SSE-KMS when a key is named (as before this setting existed), else the bucket's default.

    ``bucket-default`` with a key is allowed: the bucket's default is SSE-KMS under that key, and the
    key is named only so that the stack grants the function the use of it.
    """
    if chosen is None:
        return "sse-kms" if kms_key_id else "bucket-default"
    if chosen == "sse-kms" and not kms_key_id:
        raise ConfigurationError("environment setting encryption=sse-kms needs kms_key_id (a key ARN)")
    if chosen == "sse-s3" and kms_key_id:
        raise ConfigurationError("environment setting encryption=sse-s3 contradicts kms_key_id; "
                                 "unset one of them")
    return chosen
