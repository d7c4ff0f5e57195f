"""The typed view's Glue registration (moto over HTTP), and the partition advice `python -m transforms
ddl` prints."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.helpers import every_type_schema
from transforms.catalog.athena import view_input
from transforms.catalog.glue import register_table


@pytest.mark.parametrize("fmt", ["parquet", "orc", "csv", "jsonl"])
def test_ddl_with_partitions_says_how_partitions_are_added(fmt: str, tmp_path: Path) -> None:
    metadata = tmp_path / "m.json"
    metadata.write_text(json.dumps([{"columnName": "id", "dataType": "character"}]))
    ddl = subprocess.run([sys.executable, "-m", "transforms", "ddl", str(metadata), "--location",
                          "s3://b/ci360/aud/", "--format", fmt, "--partition", "dt", "--partition", "region"],
                         capture_output=True, text=True, check=True).stdout
    hints = "\n".join(line for line in ddl.splitlines() if line.startswith("--"))
    assert "MSCK REPAIR TABLE `aud`;" in hints
    assert ("ALTER TABLE `aud` ADD IF NOT EXISTS PARTITION (dt = '...', region = '...')\n"
            "--     LOCATION 's3://b/ci360/aud/dt=.../region=.../';") in hints
    assert "projection" in hints and "glue_database" in hints
    unpartitioned = subprocess.run([sys.executable, "-m", "transforms", "ddl", str(metadata), "--location",
                                    "s3://b/ci360/aud/", "--format", fmt],
                                   capture_output=True, text=True, check=True).stdout
    assert "MSCK" not in unpartitioned


# -- Glue registration (moto over HTTP) --------------------------------------------------------------

def register(glue: Any, database: str, key: str, fmt: str = "csv") -> dict[str, Any]:
    return register_table(glue, database, bucket="target", key=key, schema=every_type_schema(), fmt=fmt,
                          csv_header=True)


def test_a_csv_table_is_registered_with_its_typed_view(glue: Any, database: str) -> None:
    first = register(glue, database, "exports/aud/dt=2026-11-30/a.csv")
    assert (first["table"], first["view"], first["warning"]) == ("aud", "aud_typed", None)
    stored = glue.get_table(DatabaseName=database, Name="aud_typed")["Table"]
    assert stored["TableType"] == "VIRTUAL_VIEW"
    assert stored["ViewOriginalText"] == view_input(every_type_schema(), "aud", database,
                                                    partitions=["dt"])["ViewOriginalText"]
    second = register(glue, database, "exports/aud/dt=2026-12-01/b.csv")  # the view is replaced
    assert (second["action"], second["view"], second["warning"]) == ("updated", "aud_typed", None)


def test_a_table_already_holding_the_views_name_is_left_alone(glue: Any, database: str) -> None:
    glue.create_table(DatabaseName=database, TableInput={
        "Name": "aud_typed", "TableType": "EXTERNAL_TABLE",
        "StorageDescriptor": {"Columns": [{"Name": "x", "Type": "string"}], "Location": "s3://other/x/"}})
    outcome = register(glue, database, "exports/aud/a.csv")
    assert outcome["registered"] is True and outcome["view"] is None
    assert "aud_typed exists and is not an Athena view" in outcome["warning"]
    kept = glue.get_table(DatabaseName=database, Name="aud_typed")["Table"]
    assert kept["TableType"] == "EXTERNAL_TABLE" and kept["StorageDescriptor"]["Location"] == "s3://other/x/"


def test_typed_formats_get_no_view(glue: Any, database: str) -> None:
    outcome = register(glue, database, "exports/aud/a.parquet", fmt="parquet")
    assert "view" not in outcome
    assert [t["Name"] for t in glue.get_tables(DatabaseName=database)["TableList"]] == ["aud"]
