"""Command line for operators: ``python -m transforms COMMAND ...``.

One subcommand per task, each a ``_add_<name>`` that declares its arguments and a ``run`` function,
so later ones (replay, convert) slot in without touching the others. Connector errors print their
message and exit 1; usage errors exit 2 (argparse's own convention).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import sys
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from transforms.catalog.athena import FORMAT_NAMES, create_table_ddl, table_name
from transforms.ci360.keys import validate_key
from transforms.ci360.layout import parse_layout
from transforms.ci360.payload import Job
from transforms.errors import ConnectorError, ValidationError
from transforms.redact import redact_url, scrub
from transforms.schema.columns import build_schema, parse_overrides
from transforms.settings import BAD_VALUE_POLICIES, COLUMNAR_CODECS, Settings


def _read(path: str) -> bytes:
    """The file's bytes, or standard input's for ``-``."""
    if path == "-":
        return sys.stdin.buffer.read()
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ValidationError(f"cannot read {path}: {exc.strerror}") from None


def _location(text: str) -> str:
    """An ``s3://bucket/prefix/`` folder; the trailing slash is added if missing."""
    if not text.startswith("s3://") or len(text) <= len("s3://") or text[5] == "/":
        raise argparse.ArgumentTypeError(f"expected s3://bucket/prefix/, not {text!r}")
    return text if text.endswith("/") else text + "/"


def run_ddl(args: argparse.Namespace) -> int:
    layout = parse_layout(_read(args.metadata_file))
    schema = build_schema(layout, parse_overrides(args.column_types, "--column-types"))
    try:
        ddl = create_table_ddl(schema, args.location, args.format,
                               table=args.table or table_name(args.location), database=args.database,
                               csv_header=args.csv_header, partitions=args.partition)
    except ValueError as exc:
        raise ValidationError(str(exc)) from None
    sys.stdout.write(ddl)
    return 0


def _add_ddl(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "ddl", help="print Athena CREATE EXTERNAL TABLE for a CI360 metadata file",
        description="Print the Athena CREATE EXTERNAL TABLE statement for the layout in a CI360 metadata "
                    "file, for objects of one output format under an S3 folder.")
    parser.add_argument("metadata_file", metavar="METADATA_FILE", help="the CI360 metadata file ('-': stdin)")
    parser.add_argument("--location", required=True, type=_location,
                        help="the table's folder, s3://bucket/prefix/")
    parser.add_argument("--format", default="csv", choices=FORMAT_NAMES,
                        help="output format of the objects there (default: csv)")
    parser.add_argument("--table", help="table name (default: the location's last folder, normalised)")
    parser.add_argument("--database", help="qualify the table with this database")
    parser.add_argument("--column-types", default="", metavar="JSON",
                        help='column type overrides, e.g. \'{"customer_id": "bigint"}\'')
    parser.add_argument("--no-csv-header", dest="csv_header", action="store_false",
                        help="the CSV objects have no header row")
    parser.add_argument("--partition", action="append", default=[], metavar="NAME",
                        help="a Hive-style partition column under the location (repeatable)")
    parser.set_defaults(run=run_ddl)


# --- replay and convert: a transfer run here, against the S3 of the standard AWS configuration ---

_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


def _bucket(text: str) -> str:
    if not _BUCKET.fullmatch(text) or ".." in text:
        raise argparse.ArgumentTypeError(f"{text!r} is not an S3 bucket name")
    return text


def _s3_object(text: str) -> tuple[str, str]:
    """``s3://bucket/key`` as (bucket, key); the key names an object and passes the webhook's checks."""
    if not text.startswith("s3://"):
        raise argparse.ArgumentTypeError(f"expected s3://bucket/key, not {text!r}")
    bucket, slash, key = text[len("s3://"):].partition("/")
    if not slash or not key:
        raise argparse.ArgumentTypeError(f"expected s3://bucket/key, with a key after the bucket, "
                                         f"not {text!r}")
    _bucket(bucket)
    try:
        validate_key(key, "the key in --to")
    except ValidationError as exc:
        raise argparse.ArgumentTypeError(exc.message) from None
    return bucket, key


def _settings(bucket: str | None) -> Settings:
    """The deployment's settings from the environment, with the target bucket given here if any."""
    env = dict(os.environ)
    if bucket:
        env["s3_bucket_name"] = bucket
    return Settings.from_env(env)


def _clients(settings: Settings) -> tuple[Any, Any]:
    """S3 (and Glue when a database is set), configured as the functions' are (``transforms.aws``)."""
    from transforms.aws import client

    return client("s3"), client("glue") if settings.glue_database else None


Tell = Callable[[Any], dict[str, Any]]  # an outcome (result JSON or ConnectorError) -> the delivery report


def _transfer(job: Job, settings: Settings, http: Any, args: argparse.Namespace, tell: Tell | None = None,
              ) -> int:
    """Run the pipeline with a progress bar on stderr; print the result (no presigned URL) on stdout.
    With ``tell``, the outcome is reported too: the delivery report in the result's ``events``, or, on a
    failure, on stderr before the error."""
    from transforms.cli.progress_bar import ProgressBar
    from transforms.jobs.pipeline import run

    bar = None if args.quiet else ProgressBar(sys.stderr, job.key)
    interval = args.progress_interval or (0.5 if bar is not None and bar.tty else 5.0)
    settings = dataclasses.replace(settings, progress_interval_s=interval)
    s3, glue = _clients(settings)
    try:
        result = run(job, settings, s3, http, glue, progress_report=bar)
    except BaseException as exc:
        if bar is not None:
            bar.abandon()
        if tell is not None and isinstance(exc, ConnectorError):
            sys.stderr.write(f"outcome told: {json.dumps(tell(exc))}\n")
        raise
    if bar is not None:
        bar.finish(result.rows, result.bytes_read, result.bytes_written)
    body = result.to_json()
    if body.get("url"):
        body["url"] = redact_url(body["url"])  # a link to customer data is a credential too
    if tell is not None:
        body["events"] = tell(body)
    sys.stdout.write(json.dumps(body, indent=2) + "\n")
    return 0


def _read_event(path: str) -> Any:
    try:
        return json.loads(_read(path))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValidationError(f"{path} is not a JSON file ({exc})") from None


def run_replay(args: argparse.Namespace) -> int:
    from transforms.ci360.delivery import webhook_payload
    from transforms.ci360.payload import parse_job
    from transforms.sources.http import HttpSource

    event = _read_event(args.event_file)
    settings = _settings(args.bucket)
    job = parse_job(webhook_payload(event), settings)
    http = HttpSource.from_settings(settings)
    return _transfer(job, settings, http, args, _teller(job, settings) if args.tell else None)


def _teller(job: Job, settings: Settings) -> Tell:
    """The outcome to CI360 and EventBridge as the functions report it (``mode`` "replay"), configured
    from the same settings (EventBridge: ``event_bus_name``, else the account's default bus)."""
    from transforms.aws import client
    from transforms.outcomes.report import Notifier, report_outcome

    notifier = Notifier.from_settings(settings, client)
    return lambda outcome: report_outcome(job, outcome, settings, notifier, mode="replay")


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, not {text!r}")
    return value


def _add_progress_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress output on stderr")
    parser.add_argument("--progress-interval", type=_seconds, metavar="SECONDS",
                        help="seconds between progress updates (default: 0.5 on a terminal, else 5)")


def _add_replay(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "replay", help="run a webhook event (file) through the pipeline against the configured S3",
        description="Run a CI360 webhook event through the pipeline here, synchronously, against the S3 "
                    "of the standard AWS configuration, and print the result JSON. EVENT_FILE is an API "
                    "Gateway proxy event or a bare CI360 payload ('-': stdin). Settings come from the "
                    "environment as for the function.")
    parser.add_argument("event_file", metavar="EVENT_FILE", help="the event JSON ('-': stdin)")
    parser.add_argument("--bucket", type=_bucket, help="target bucket (default: $s3_bucket_name)")
    parser.add_argument("--tell", action="store_true",
                        help="report the outcome to CI360 and/or EventBridge as the functions do "
                             "(ci360_events_url, event_bus_name, ...; mode \"replay\")")
    _add_progress_options(parser)
    parser.set_defaults(run=run_replay)


def run_convert(args: argparse.Namespace) -> int:
    from transforms.settings import choice
    from transforms.sources.http import HttpSource
    from transforms.sources.local import STDIN, LocalSource

    if args.source == STDIN and args.metadata == STDIN:
        raise ValidationError("SOURCE and --metadata cannot both be standard input")
    bucket, key = args.to
    settings = _settings(bucket)
    column_types = {**settings.column_types, **parse_overrides(args.column_types, "--column-types")}
    job = Job(
        occurrence_id=f"cli-{uuid.uuid4()}", task_id="", task_name="convert", tenant="",
        data_url=args.source, metadata_url=args.metadata, bucket=bucket, key=key,
        csv_header=settings.csv_header if args.csv_header is None else args.csv_header,
        column_types=column_types,
        on_bad_value=args.on_bad_value or settings.on_bad_value,
        compression=choice("--compression", args.compression or "", COLUMNAR_CODECS, settings.compression),
        processing_mode="sync",
        overwrite=settings.overwrite if args.overwrite is None else args.overwrite,
    )
    http = LocalSource(HttpSource.from_settings(settings))
    return _transfer(job, settings, http, args)


def _add_convert(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "convert", help="land a data file (local or URL) at s3://bucket/key, for backfills",
        description="Stream a CI360 data file into S3 as the webhook would, for backfills: SOURCE and "
                    "the metadata file are local paths, file:// or http(s) URLs (a presigned URL is "
                    "never printed). The output format follows the key's extension. Nothing is "
                    "written to local disk.")
    parser.add_argument("source", metavar="SOURCE", help="the data file (headerless CSV; '-': stdin)")
    parser.add_argument("--metadata", required=True, metavar="M", help="the CI360 metadata file")
    parser.add_argument("--to", required=True, type=_s3_object, metavar="s3://BUCKET/KEY",
                        help="the target object; its extension picks the format")
    parser.add_argument("--column-types", default="", metavar="JSON",
                        help='column type overrides, e.g. \'{"customer_id": "bigint"}\'')
    parser.add_argument("--on-bad-value", choices=BAD_VALUE_POLICIES,
                        help="typed formats: fail on a value that does not fit its type, or write null "
                             "(default: $on_bad_value, else fail)")
    parser.add_argument("--compression", choices=COLUMNAR_CODECS,
                        help="columnar codec for parquet/orc (default: $compression, else the format's)")
    parser.add_argument("--csv-header", action=argparse.BooleanOptionalAction, default=None,
                        help="write a header row from the metadata (default: $csv_header, else yes)")
    parser.add_argument("--overwrite", action=argparse.BooleanOptionalAction, default=None,
                        help="replace an object already at the key (default: $overwrite, else yes)")
    _add_progress_options(parser)
    parser.set_defaults(run=run_convert)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m transforms",
                                     description="Operator tools for the CI360 to S3 connector.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_ddl(commands)
    _add_replay(commands)
    _add_convert(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except ConnectorError as exc:
        print(f"error: {exc.code}: {scrub(exc.message)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
