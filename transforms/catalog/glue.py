"""Register what landed in the Glue Data Catalog, so Athena can query it without a crawler.

The table is the key's folder (see ``transforms.catalog.athena``); each run creates it or brings it up to
date with this run's schema and format, then adds the partition the key sits in. The client is
passed in (the pipeline owns its boto3 session and configuration); every Glue failure becomes a
``CatalogError`` carrying Glue's error code, never botocore's text.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from transforms.aws import translated
from transforms.catalog.athena import (
    MANAGED_PARAMETERS,
    check_identifier,
    partition_input,
    table_format,
    table_input,
    table_location,
    table_name,
    view_input,
)
from transforms.errors import CatalogError, ConfigurationError, ValidationError
from transforms.schema.columns import TypedSchema


def _glue_call(what: str, call: Callable[..., Any], **kwargs: Any) -> Any:
    """Run one Glue call; turn its failure into a ``CatalogError`` naming ``what`` and Glue's code."""
    with translated(lambda f: CatalogError(f"Glue could not {what} ({f.code})", f.code, f.http_status)):
        return call(**kwargs)


def _put_table(glue: Any, database: str, wanted: dict[str, Any]) -> tuple[str, list[str]]:
    """Create the table, or update it in place; ``(action, warnings)``.

    An update keeps table properties this connector does not own (a user's partition projection,
    say). It refuses to change the partition columns: partitions already registered would no longer
    fit the table, so the table is left as it is and the caller is told.
    """
    name = wanted["Name"]
    try:
        _glue_call(f"create table {database}.{name}", glue.create_table, DatabaseName=database,
                   TableInput=wanted)
        return "created", []
    except CatalogError as exc:
        if exc.glue_code == "EntityNotFoundException":
            raise CatalogError(f"Glue database {database!r} does not exist", exc.glue_code,
                               exc.http_status) from None
        if exc.glue_code != "AlreadyExistsException":
            raise
    existing = _glue_call(f"read table {database}.{name}", glue.get_table, DatabaseName=database,
                          Name=name)["Table"]
    old_keys = [k["Name"] for k in existing.get("PartitionKeys", [])]
    new_keys = [k["Name"] for k in wanted["PartitionKeys"]]
    if old_keys != new_keys:
        return "unchanged", [
            f"table {database}.{name} is partitioned by ({', '.join(old_keys) or 'nothing'}) but this key "
            f"by ({', '.join(new_keys) or 'nothing'}); the table was left as it was"]
    warnings = []
    old_class = existing.get("Parameters", {}).get("classification")
    new_class = wanted["Parameters"]["classification"]
    if old_class and old_class != new_class:
        warnings.append(f"table {database}.{name} was {old_class} and is now {new_class}: {old_class} "
                        "objects still in its folder will fail its queries")
    kept = {k: v for k, v in existing.get("Parameters", {}).items() if k not in MANAGED_PARAMETERS}
    update = {**wanted, "Parameters": {**kept, **wanted["Parameters"]}}
    _glue_call(f"update table {database}.{name}", glue.update_table, DatabaseName=database,
               TableInput=update)
    return "updated", warnings


def _put_partition(glue: Any, database: str, table: str, partition: dict[str, Any]) -> None:
    """Add the partition; if it exists, give it this run's storage so it matches the table."""
    values = partition["Values"]
    try:
        _glue_call(f"add partition {values} to {database}.{table}", glue.create_partition,
                   DatabaseName=database, TableName=table, PartitionInput=partition)
    except CatalogError as exc:
        if exc.glue_code != "AlreadyExistsException":
            raise
        _glue_call(f"update partition {values} of {database}.{table}", glue.update_partition,
                   DatabaseName=database, TableName=table, PartitionValueList=values,
                   PartitionInput=partition)


def _put_view(glue: Any, database: str, view: dict[str, Any]) -> str | None:
    """Create or replace the typed view of a CSV table; a warning (never a failure) if it cannot.

    The table is what holds the data and it is registered by now; the view is a convenience over it.
    Only a view of ours is replaced: a table or someone's view that already has the name is kept.
    """
    name = view["Name"]
    try:
        try:
            _glue_call(f"create view {database}.{name}", glue.create_table, DatabaseName=database,
                       TableInput=view)
            return None
        except CatalogError as exc:
            if exc.glue_code != "AlreadyExistsException":
                raise
        existing = _glue_call(f"read view {database}.{name}", glue.get_table, DatabaseName=database,
                              Name=name)["Table"]
        if existing.get("TableType") != "VIRTUAL_VIEW" or existing.get("Parameters", {}).get(
                "presto_view") != "true":
            return (f"{database}.{name} exists and is not an Athena view, so the typed view was not "
                    "registered; run the view statement of `python -m transforms ddl` under another name")
        _glue_call(f"update view {database}.{name}", glue.update_table, DatabaseName=database,
                   TableInput=view)
        return None
    except CatalogError as exc:
        return f"the typed view {database}.{name} was not registered: {exc.message}"


def _not_registered(database: str, warning: str, location: str | None = None) -> dict[str, Any]:
    return {"registered": False, "database": database, "table": None, "location": location,
            "partition": None, "action": "none", "warning": warning}


def register_table(glue: Any, database: str, *, bucket: str, key: str, schema: TypedSchema, fmt: str,
                   csv_header: bool, table: str | None = None) -> dict[str, Any]:
    """Create or update the Glue table for ``key``'s folder and add the key's partition, if any.

    ``fmt`` is the output format's name (``transforms.formats.registry.Format.name``). Returns ``registered``,
    ``database``, ``table``, ``location``, ``partition`` (name -> value, or None), ``action``
    (created, updated, unchanged or none) and ``warning`` (None, or why the table may not read as
    hoped). A key the catalog cannot describe (at the bucket root, or whose partition names repeat
    a column) registers nothing and says why. Glue failures raise ``CatalogError``.
    """
    try:
        database = check_identifier(database, "Glue database name")
    except ValueError as exc:
        raise ConfigurationError(f"glue_database: {exc}") from None
    location, partitions = table_location(bucket, key)
    if location is None:
        return _not_registered(database, f"s3://{bucket}/{key} is at the bucket root (or only under "
                               "partition folders): Athena tables are folders, so no table was "
                               "registered; land it under a prefix")
    try:
        name = check_identifier(table, "table name") if table else table_name(location)
    except ValueError as exc:
        raise ValidationError(str(exc), [{"field": "table"}]) from None
    try:
        wanted = table_input(schema, location, fmt, table=name, csv_header=csv_header,
                             partitions=[p for p, _ in partitions])
    except ValueError as exc:
        return _not_registered(database, f"no table registered: {exc}", location)
    action, warnings = _put_table(glue, database, wanted)
    partition: Mapping[str, str] | None = None
    if partitions and action != "unchanged":
        folder = f"s3://{bucket}/{key.rsplit('/', 1)[0]}/"
        _put_partition(glue, database, name, partition_input(wanted, [v for _, v in partitions], folder))
        partition = dict(partitions)
    outcome = {"registered": action != "unchanged", "database": database, "table": name,
               "location": location, "partition": partition, "action": action}
    if table_format(fmt).csv:  # typed access to a CSV table is its view
        view = view_input(schema, name, database, partitions=[p for p, _ in partitions])
        problem = _put_view(glue, database, view) if action != "unchanged" else None
        outcome["view"] = view["Name"] if action != "unchanged" and not problem else None
        if problem:
            warnings.append(problem)
    return {**outcome, "warning": "; ".join(warnings) or None}
