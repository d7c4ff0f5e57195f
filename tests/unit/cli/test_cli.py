"""``python -m transforms ddl``: argument handling, output and exit codes."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from tests.support.helpers import run_cli
from transforms.cli.main import main


def test_ddl_prints_the_csv_table_by_default(capsys: pytest.CaptureFixture[str], metadata: str) -> None:
    code, out, err = run_cli(capsys, "ddl", metadata, "--location", "s3://bucket/exports/ci360-audience/")
    assert code == 0 and err == ""
    assert "CREATE EXTERNAL TABLE IF NOT EXISTS `ci360_audience` (" in out
    assert "OpenCSVSerde" in out and "'skip.header.line.count' = '1'" in out
    assert "`last_seen` string COMMENT" in out


def test_ddl_options(capsys: pytest.CaptureFixture[str], metadata: str) -> None:
    code, out, _ = run_cli(capsys, "ddl", metadata, "--location", "s3://bucket/prefix", "--format", "parquet",
                       "--table", "aud", "--database", "analytics", "--partition", "dt",
                       "--column-types", '{"Customer ID": "bigint"}')
    assert code == 0
    assert "CREATE EXTERNAL TABLE IF NOT EXISTS `analytics`.`aud` (" in out
    assert "`customer_id` bigint," in out and "`last_seen` timestamp" in out
    assert "PARTITIONED BY (`dt` string)" in out
    assert "STORED AS PARQUET" in out
    assert "LOCATION 's3://bucket/prefix/'" in out  # the missing trailing slash is added


def test_no_csv_header(capsys: pytest.CaptureFixture[str], metadata: str) -> None:
    code, out, _ = run_cli(capsys, "ddl", metadata, "--location", "s3://b/p/", "--no-csv-header")
    assert code == 0 and "skip.header.line.count" not in out


def test_metadata_from_stdin(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import io

    class Stdin:
        buffer = io.BytesIO(b"a,b\n")

    monkeypatch.setattr(sys, "stdin", Stdin)
    code, out, _ = run_cli(capsys, "ddl", "-", "--location", "s3://b/p/", "--format", "orc")
    assert code == 0 and "`a` string" in out and "STORED AS ORC" in out


@pytest.mark.parametrize(("extra", "message"), [
    (["--column-types", "{not json"], "--column-types must be a JSON object"),
    (["--column-types", '{"nope": "bigint"}'], "nope"),
    (["--partition", "email"], "also a data column"),
    (["--table", "my-table"], "letters, digits and underscores"),
])
def test_errors_print_a_message_and_exit_1(capsys: pytest.CaptureFixture[str], metadata: str,
                                           extra: list[str], message: str) -> None:
    code, out, err = run_cli(capsys, "ddl", metadata, "--location", "s3://b/p/", *extra)
    assert code == 1 and out == ""
    assert err.startswith("error: ") and message in err


def test_unreadable_metadata(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = run_cli(capsys, "ddl", str(tmp_path / "missing.json"), "--location", "s3://b/p/")
    assert code == 1 and "cannot read" in err


@pytest.mark.parametrize("argv", [
    ["ddl", "m.json"],  # --location is required
    ["ddl", "m.json", "--location", "/local/path/"],
    ["ddl", "m.json", "--location", "s3://b/p/", "--format", "xlsx"],
    [],  # a command is required
])
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(argv)
    assert caught.value.code == 2
    assert "usage:" in capsys.readouterr().err
