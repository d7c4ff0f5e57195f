"""Deployment settings: each declared once (``SETTINGS``), read once from the environment.

Names are lowercase to match SAS's own connector (``s3_bucket_name``), so an existing deployment's
configuration carries over unchanged. ``SETTINGS`` is the one declaration of every setting: its name (the
environment variable and the ``--param`` name), its default as written in serverless.yml and the README,
its unit, its parser with bounds, and a one-line description. ``Settings.from_env`` reads every field from
it, and tests/unit/test_settings_declared_once.py checks serverless.yml and the README's table against it.

One unit convention: every ``_mb`` setting is in MiB (2^20 bytes), every ``_kb`` setting in KiB (2^10).
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from transforms.ci360.allowlist import DEFAULT_ALLOWLIST, DEFAULT_PATTERNS, OriginPattern, parse_allowlist
from transforms.ci360.keys import check_key_template, check_prefix
from transforms.ci360.layout import MAX_COLUMNS
from transforms.errors import ConfigurationError, ValidationError
from transforms.schema.columns import parse_overrides

PROCESSING_MODES = ("sync", "async", "auto")
MAX_CONNECTIONS = 32  # the HTTP source's pool keeps this many connections per host
# What the sink asks S3 for: nothing (the bucket's default encryption applies; S3 always encrypts, with
# SSE-S3 at least), SSE-S3 forced, or SSE-KMS under kms_key_id.
ENCRYPTIONS = ("bucket-default", "sse-s3", "sse-kms")
# Here rather than in transforms.formats.registry, so that reading settings loads no writer (GET /jobs).
COLUMNAR_CODECS = ("snappy", "zstd", "gzip", "none")
BAD_VALUE_POLICIES = ("fail", "null")
MAX_CONNECTIONS = 32  # the HTTP source's pool keeps this many connections per host
MIB = 1024 * 1024
KIB = 1024
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


# Parsers: (name, text) -> value, where text is the stripped value or, when unset, the declared default.
# They raise ValueError or ValidationError with a message that starts with the setting's name.
Parser = Callable[[str, str], Any]


def integer(minimum: int, maximum: int | None = None) -> Parser:
    def parse(name: str, text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise ValueError(f"{name} must be an integer") from None
        if maximum is not None and not minimum <= value <= maximum:
            raise ValueError(f"{name} must be between {minimum} and {maximum}")
        if value < minimum:
            raise ValueError(f"{name} must be at least {minimum}")
        return value
    return parse


def positive(name: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{name} must be a number") from None
    if not value > 0:
        raise ValueError(f"{name} must be positive")
    return value


def one_of(allowed: tuple[str, ...]) -> Parser:
    return lambda name, text: choice(name, text, allowed, None)


def boolean(name: str, text: str) -> bool:
    return parse_bool(name, text)


def text_or_none(name: str, text: str) -> str | None:
    return text or None


_BUS_NAME = re.compile(r"[A-Za-z0-9._/-]{1,256}")


def _bus_name(name: str, text: str) -> str | None:
    """A bus of the function's own account by name (the role may put events on that bus only)."""
    if text and not _BUS_NAME.fullmatch(text):
        raise ValueError(f"{name} must be the name of an event bus of this account, not an ARN or URL")
    return text or None


def _key_template(name: str, text: str) -> str | None:
    return check_key_template(text) if text else None


@dataclass(frozen=True)
class Setting:
    """One setting, declared once."""

    name: str  # the environment variable, the `--param` name and the README's row
    default: str  # as written in serverless.yml and the README; "" is empty (unset)
    description: str
    parse: Parser = text_or_none
    attribute: str | None = None  # the Settings field; None: not read by the function's code
    unit: str = ""  # "MiB", "KiB", "s", "h"...: what the number counts
    scale: int = 1  # the field holds parse(text) * scale (MiB -> bytes)
    # function: in every function's environment (custom.settings -> provider.environment);
    # deploy: decides the stack only (custom.settings, CloudFormation Parameters);
    # stack: the name of one of the stack's resources (custom.stack -> provider.environment);
    # required: no default at all (the target bucket);
    # local: read by a local invoke only (from its shell's environment), never deployed: not in
    # serverless.yml at all (a secret in plain text).
    where: str = "function"
    send_parameter: bool = False  # a send parameter of the same name overrides it per call

    def read(self, text: str) -> Any:
        value = self.parse(self.name, text)
        return value * self.scale if self.scale != 1 else value


SETTINGS: tuple[Setting, ...] = (
    Setting("s3_bucket_name", "", "The target bucket (the name SAS's own S3 connector uses).",
            attribute="bucket", where="required"),
    # Where objects land.
    Setting("s3_key_prefix", "", "Every key is confined under this prefix (literal).",
            lambda name, text: check_prefix(text),
            attribute="s3_key_prefix"),
    Setting("key_template", "", "Default key template, e.g. ci360/{taskName}/dt={date}/{s3_filename}.",
            _key_template, attribute="key_template"),
    Setting("overwrite", "true", "false: an existing key is refused with 409.", boolean,
            attribute="overwrite", send_parameter=True),
    # What is written.
    Setting("csv_header", "true", "Header row on CSV targets.", boolean, attribute="csv_header",
            send_parameter=True),
    Setting("column_types", "", "JSON object, column -> Athena type.",
            lambda name, text: parse_overrides(text, name),
            attribute="column_types", send_parameter=True),
    Setting("on_bad_value", "fail", "fail (422) or null (counted).",
            lambda name, text: choice(name, text, BAD_VALUE_POLICIES, "fail"), attribute="on_bad_value",
            send_parameter=True),
    Setting("compression", "", "Parquet/ORC codec; empty: snappy.", one_of(COLUMNAR_CODECS),
            attribute="compression", send_parameter=True),
    Setting("gzip_level", "1", "1-9 for .gz targets.", integer(1, 9), attribute="gzip_level"),
    Setting("row_group_mb", "32", "Parquet row group (and ORC stripe batch) size in Arrow memory.",
            integer(1), attribute="row_group_bytes", unit="MiB", scale=MIB),
    # Sync or queued, and exactly once.
    Setting("processing_mode", "auto", "sync, async, or auto: by the data file's size.",
            lambda name, text: choice(name, text, PROCESSING_MODES, "auto"), attribute="processing_mode",
            send_parameter=True),
    Setting("sync_max_mb", "100", "In auto, larger data files go to the queue.", integer(0),
            attribute="sync_max_bytes", unit="MiB", scale=MIB),
    Setting("jobs_queue", "", "The job queue: its name (looked up once) or its URL.", attribute="jobs_queue",
            where="stack"),
    Setting("jobs_table", "", "The job records' table.", attribute="jobs_table", where="stack"),
    Setting("idempotency_table", "", "The idempotency records' table.", attribute="idempotency_table",
            where="stack"),
    Setting("idempotency_hours", "72", "How long a repeated webhook gets the first call's result.",
            integer(1), attribute="idempotency_hours", unit="h"),
    Setting("deadline_margin_s", "20", "The worker stops this long before its time limit.", positive,
            attribute="deadline_margin_s", unit="s"),
    # Catalog and encryption.
    Setting("glue_database", "", "Register each landed folder as a Glue/Athena table.",
            attribute="glue_database"),
    Setting("kms_key_id", "", "SSE-KMS with this key ARN (the role may use exactly it).",
            attribute="kms_key_id"),
    Setting("encryption", "", "bucket-default, sse-s3 or sse-kms; empty: sse-kms with kms_key_id.",
            one_of(ENCRYPTIONS), attribute="encryption"),
    # Safe inputs.
    Setting("source_host_allowlist", DEFAULT_ALLOWLIST, "Patterns over scheme://host:port that presigned "
            "URLs must match.", lambda name, text: parse_allowlist(text), attribute="source_host_allowlist"),
    Setting("max_columns", str(MAX_COLUMNS), "Wider layouts are refused (422).", integer(1),
            attribute="max_columns"),
    Setting("metadata_max_kb", "1024", "Larger metadata files are refused (422).", integer(1),
            attribute="metadata_max_bytes", unit="KiB", scale=KIB),
    Setting("result_url_ttl", "0", "Seconds; not 0: the response carries a presigned GET URL of the result.",
            integer(0), attribute="result_url_ttl", unit="s"),
    # Transfer.
    # S3 refuses multipart parts under 5 MiB (except the last).
    Setting("part_size_mb", "8", "Smallest multipart part (parts grow to fit any object in 10,000).",
            integer(5), attribute="part_size", unit="MiB", scale=MIB),
    # S3 caps each connection (~60 MB/s from Lambda) both ways: a passthrough's parts must leave as fast as
    # download_connections bring its bytes in (10 x 60 MB/s: what 12 of them bring at the ~50 MB/s a ranged
    # connection keeps). Measured with both directions capped
    # (bench/ranged.py, 1 GiB): 4 parts bound .csv by the upload (6.6 s), 8 brought it to 4.8 s, 16 to
    # 4.5 s, where the download bounds it (2.2 s of wire at 8 x 60 MB/s). Memory: (this + 1) x part size.
    Setting("upload_concurrency", "10", "Parts uploading at once.", integer(1),
            attribute="upload_concurrency"),
    Setting("connect_timeout", "10", "Seconds to connect to a presigned URL.", positive,
            attribute="connect_timeout", unit="s"),
    Setting("read_timeout", "60", "Seconds to wait for data from a presigned URL.", positive,
            attribute="read_timeout", unit="s"),
    Setting("resume_attempts", "5", "Range requests after a dropped download.", integer(0),
            attribute="resume_attempts"),
    # A connection paced by S3 does not keep its cap at every moment (each range is a request of its own),
    # so 8 connections brought ~75% of 8 x 60 MB/s here (bench/wire.py); at 4x (1 GiB, capped both ways, 2
    # cores, medians of 3, one run) .csv took 3.3 s with 8, 2.7 s with 12, 2.5 s with 16 (where the 10
    # uploads bound it), and typed formats use no more (their read-ahead grows only while they wait).
    # Memory: (this + 1) x download_range_mb, 52 MiB at 12.
    Setting("download_connections", "12", "Connections fetching the data file's ranges at once (1: one GET).",
            integer(1, MAX_CONNECTIONS), attribute="download_connections"),
    Setting("download_range_mb", "4", "Size of each range of the data file.", integer(1),
            attribute="download_range_bytes", unit="MiB", scale=MIB),
    Setting("progress_interval_s", "10", "Seconds between progress log lines.", positive,
            attribute="progress_interval_s", unit="s"),
    # Outcomes reported back to CI360 (an external event) and out to EventBridge (transforms.outcomes).
    Setting("ci360_events_url", "", "The tenant's external gateway events endpoint; empty: no event is sent.",
            attribute="ci360_events_url"),
    Setting("ci360_tenant_id", "", "The tenant id of the access point (the JWT's clientID).",
            attribute="ci360_tenant_id"),
    Setting("ci360_client_secret_arn", "", "Secrets Manager secret holding the access point's client secret.",
            attribute="ci360_client_secret_arn"),
    Setting("ci360_client_secret", "", "The client secret itself: a local invoke only.",
            attribute="ci360_client_secret", where="local"),
    Setting("ci360_event_name", "ci360_s3_connector_outcome", "The external event defined in CI360.",
            attribute="ci360_event_name"),
    Setting("ci360_identity_attribute", "subject_id", "The identity attribute the event carries.",
            attribute="ci360_identity_attribute"),
    Setting("ci360_identity_value", "ci360-s3-connector", "The identity the events are recorded against.",
            attribute="ci360_identity_value"),
    Setting("ci360_events_timeout_s", "10", "At most this long sending one event to CI360, retries included.",
            positive, attribute="ci360_events_timeout_s", unit="s"),
    Setting("event_bus_name", "", "EventBridge bus for Audience landed/failed; empty: the default bus.",
            _bus_name, attribute="event_bus_name"),
    Setting("jobs_max_receives", "3", "Receives of a queued job before it moves to the dead-letter queue.",
            integer(1, 1000), attribute="jobs_max_receives"),
    # Fan-out (README, "Fan-out"): past one function, a Step Functions Distributed Map over byte ranges.
    # 20 GiB: the slowest format (.jsonl, ~53-60 MB/s at 2 vCPUs) lands it in ~400 s, under half of the
    # worker's 880 s (900 s less deadline_margin_s), so every file below it surely fits one function.
    Setting("fanout_min_mb", "20480", "In auto (or async) mode, data files at least this large land through "
            "the fan-out state machine; 0: never.", integer(0), attribute="fanout_min_bytes", unit="MiB",
            scale=MIB),
    # 1 GiB: ~20 s of one range function at the slowest format (~44x inside its limit), its output at
    # most ~2.7 GB (.jsonl grows ~2.5x: one part copy is at most 5 GiB), 1,024 ranges for 1 TiB.
    Setting("fanout_range_mb", "1024", "Bytes of the data file each range function lands.", integer(1),
            attribute="fanout_range_bytes", unit="MiB", scale=MIB),
    # 32 GiB: one CopyParts worker copies it in ~11 s at the assumed ~100 MB/s a copy, 32 at once, and in
    # ~110 s at a tenth of that; its largest part (at most 5 GiB) at a tenth takes ~540 s: still inside the
    # 880 s. Smaller batches buy no speed (a batch lasts at least its largest part) and cost transitions.
    Setting("fanout_copy_batch_mb", "32768", "Bytes of the assembly each copy worker copies inside S3 (at "
            "most 1,000 parts).", integer(1), attribute="fanout_copy_batch_bytes", unit="MiB", scale=MIB),
    Setting("fanout_state_machine", "", "The fan-out state machine: its name (made its ARN once) or ARN.",
            attribute="fanout_state_machine", where="stack"),
    # Read by Powertools, not by our code.
    Setting("LOG_LEVEL", "INFO", "Powertools log level."),
    # Deploy time only: they shape the stack, the function never reads them.
    Setting("create_bucket", "false", "true: the stack creates the target bucket.", boolean, where="deploy"),
    Setting("alarm_topic_arn", "", "SNS topic notified when a job lands in the dead-letter queue.",
            where="deploy"),
    Setting("worker_max_concurrency", "5", "At most this many workers at once.", integer(2, 1000),
            where="deploy"),
    Setting("allowed_source_ips", "", "Comma-separated CIDR ranges; set, the API refuses every other source.",
            where="deploy"),
    Setting("fanout_max_concurrency", "100", "Range functions running at once in one fan-out (the Map's "
            "MaxConcurrency).", integer(1, 10000), where="deploy"),
)
DECLARED = {setting.name: setting for setting in SETTINGS}


@dataclass(frozen=True)
class Settings:
    """What a deployment decides; send parameters may override the per-job ones (csv_header).

    Each field's default is its declaration's default read (a test checks that they agree).
    """

    bucket: str
    csv_header: bool = True
    result_url_ttl: int = 0
    part_size: int = 8 * MIB  # memory: (upload_concurrency + 1) parts at most
    upload_concurrency: int = 10  # uploads keep up with the download (see upload_concurrency's setting)
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    gzip_level: int = 1  # ISA-L's fastest: keeps pace with the network; 6 (zlib's) ~11% smaller, ~10x the CPU
    column_types: Mapping[str, str] = field(default_factory=dict)  # deployment-wide type overrides
    on_bad_value: str = "fail"
    compression: str | None = None
    row_group_bytes: int = 32 * MIB  # Arrow memory: about 15 MB of snappy Parquet
    resume_attempts: int = 5  # Range requests after a dropped download, with exponential backoff
    # The data file as consecutive byte ranges over this many connections (1: one GET).
    download_connections: int = 12
    download_range_bytes: int = 4 * MIB  # memory: (connections + 1) ranges at most
    progress_interval_s: float = 10.0  # seconds between progress log lines
    glue_database: str | None = None  # register each landed folder as an Athena table when set
    kms_key_id: str | None = None  # SSE-KMS under this key when set (and encryption is not bucket-default)
    encryption: str | None = None  # one of ENCRYPTIONS; None: derived from kms_key_id (encryption_setting)
    # Asynchronous processing and exactly-once landing (each is off when its resource is not named).
    processing_mode: str = "auto"  # sync, async, or auto: by the data file's size
    sync_max_bytes: int = 100 * MIB  # in auto, larger files go to the queue
    jobs_queue: str | None = None  # the job queue: its name (looked up once) or its URL
    jobs_table: str | None = None
    idempotency_table: str | None = None
    idempotency_hours: int = 72  # how long a repeated webhook gets the first call's result
    deadline_margin_s: float = 20.0  # stop this long before the function's time limit
    # Fan-out: files at least fanout_min_bytes (0: never) run as a Step Functions execution.
    fanout_min_bytes: int = 20480 * MIB
    fanout_range_bytes: int = 1024 * MIB  # bytes of the data file per range function
    fanout_copy_batch_bytes: int = 32768 * MIB  # bytes of the assembly per copy worker
    fanout_state_machine: str | None = None  # its name or ARN; None: no fan-out
    local: bool = False  # run by `serverless invoke local` (IS_LOCAL; not a setting): see _resource
    # Bounds on what a source may make us hold: columns (memory of the columnar writers, the result's
    # size) and the metadata file's bytes; above either, the call is refused with 422.
    max_columns: int = MAX_COLUMNS
    metadata_max_bytes: int = 1024 * KIB
    # Safe inputs: where presigned URLs may point, and where (and whether) objects may be written.
    source_host_allowlist: tuple[OriginPattern, ...] = DEFAULT_PATTERNS
    s3_key_prefix: str = ""  # every key starts with this (literal)
    key_template: str | None = None  # e.g. ci360/{taskName}/dt={date}/{s3_filename}
    overwrite: bool = True  # false: an existing key is refused with 409 (send parameter overrides)
    # Outcomes back to CI360 (off while ci360_events_url is unset) and out to EventBridge.
    ci360_events_url: str | None = None
    ci360_tenant_id: str | None = None
    ci360_client_secret_arn: str | None = None
    ci360_client_secret: str | None = field(default=None, repr=False)  # a local invoke only
    ci360_event_name: str | None = "ci360_s3_connector_outcome"
    ci360_identity_attribute: str | None = "subject_id"
    ci360_identity_value: str | None = "ci360-s3-connector"
    ci360_events_timeout_s: float = 10.0
    event_bus_name: str | None = None  # from_env: "default" deployed; a local invoke: only when named
    jobs_max_receives: int = 3  # the job queue's maxReceiveCount: the worker's last try is final

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Every declared setting the function reads, each refused with a ConfigurationError naming it."""
        env = os.environ if env is None else env
        local = env.get("IS_LOCAL", "").strip().lower() in _TRUE
        values: dict[str, Any] = {}
        for setting in SETTINGS:
            if setting.attribute is None:
                continue
            if setting.where == "stack":
                values[setting.attribute] = _resource(env, setting.name, local)
                continue
            if setting.where == "local" and not local:
                values[setting.attribute] = None  # deployed, a plain-text secret is never read
                continue
            text = env.get(setting.name, "").strip()
            if setting.where == "required" and not text:
                raise ConfigurationError(f"environment setting {setting.name} is not set: "
                                         f"{setting.description}")
            try:
                values[setting.attribute] = setting.read(text or setting.default)
            except (ValidationError, ValueError) as exc:
                message = exc.message if isinstance(exc, ValidationError) else str(exc)
                raise ConfigurationError(f"environment setting {message}") from None
        values["encryption"] = encryption_setting(values["encryption"], values["kms_key_id"])
        values["event_bus_name"] = values["event_bus_name"] or (None if local else "default")
        values["ci360_events_url"] = events_url(values, local)
        return cls(local=local, **values)


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


EVENTS_PATH = "/marketingGateway/events"  # on the tenant's external gateway address (CONTRACT.md)


def events_url(values: Mapping[str, Any], local: bool) -> str | None:
    """The CI360 events endpoint, checked with what it needs, or None (no event is sent).

    The access point's "external gateway address" alone is completed with the events path. https only:
    the request carries a bearer token that is as good as the secret; plain http only to this machine
    on a local invoke (a fake gateway).
    """
    url = values.get("ci360_events_url")
    if not url:
        return None
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        raise ConfigurationError("environment setting ci360_events_url is not a URL") from None
    if parts.scheme != "https" and not (local and parts.scheme == "http" and _loopback(host)):
        raise ConfigurationError("environment setting ci360_events_url must be an https:// URL "
                                 "(http only to this machine, on a local invoke)")
    if not host or parts.query or parts.fragment or parts.username or parts.password:
        raise ConfigurationError("environment setting ci360_events_url must be https://host[/path], "
                                 "without credentials, query or fragment")
    if not values.get("ci360_tenant_id"):
        raise ConfigurationError("environment setting ci360_tenant_id is not set (ci360_events_url is)")
    if not (values.get("ci360_client_secret_arn") or values.get("ci360_client_secret")):
        also = "; or ci360_client_secret on a local invoke" if local else ""
        raise ConfigurationError("environment setting ci360_client_secret_arn is not set "
                                 f"(ci360_events_url is){also}")
    if parts.path in ("", "/"):
        url = url.rstrip("/") + EVENTS_PATH
    return url


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


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
