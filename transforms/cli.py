"""Command line for operators: ``python -m transforms COMMAND ...``.

One subcommand per task, each a ``_add_<name>`` that declares its arguments and a ``run`` function,
so later ones (replay, convert) slot in without touching the others. Connector errors print their
message and exit 1; usage errors exit 2 (argparse's own convention).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from transforms.athena import FORMAT_NAMES, create_table_ddl, table_name
from transforms.errors import ConnectorError, ValidationError
from transforms.layout import parse_layout
from transforms.schema import build_schema, parse_overrides


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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m transforms",
                                     description="Operator tools for the CI360 to S3 connector.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_ddl(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except ConnectorError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
