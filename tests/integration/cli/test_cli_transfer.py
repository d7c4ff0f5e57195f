"""``python -m transforms replay`` and ``convert``: transfers run from the command line against moto.

Tests write their inputs (event files, CSV and metadata files) to tmp_path; the connector itself only
reads them, which the disk-write audit checks.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pyarrow.parquet as pq
import pytest

from devstack.ci360_gateway import FakeCI360Gateway
from devstack.localstack import unique_bucket, webhook_payload
from tests.support.helpers import (
    DATA,
    HEADER,
    JSON_LAYOUT,
    ROOT,
    Stack,
    api_gateway_event,
    big_audience,
    run_cli,
    write_event,
)
from tests.support.outcomes import SECRET, Bus, told
from transforms.cli.main import main
from transforms.cli.progress_bar import human_bytes

SIGNATURE = "X-Amz-Signature"


# --- replay -------------------------------------------------------------------------------------

def test_replay_of_an_api_gateway_event(stack: Stack, tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    data_url, metadata_url = stack.stage(DATA, JSON_LAYOUT)
    event = api_gateway_event(webhook_payload(data_url, metadata_url, "replayed/audience.csv",
                                              occurrence_id="occ-1"))
    code, out, err = run_cli(capsys, "replay", write_event(tmp_path, event), "-q")
    assert code == 0, err
    body = json.loads(out)
    assert body["status"] == "succeeded" and body["occurrenceId"] == "occ-1"
    assert (body["bucket"], body["key"], body["rows"]) == (stack.target, "replayed/audience.csv", 4)
    assert stack.landed("replayed/audience.csv") == HEADER + DATA
    assert SIGNATURE not in out + err and err == ""


def test_replay_of_a_bare_payload_into_another_bucket(stack: Stack, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    other = unique_bucket("backfill")
    stack.s3.create_bucket(Bucket=other)
    monkeypatch.delenv("s3_bucket_name")
    monkeypatch.setenv("result_url_ttl", "300")
    data_url, metadata_url = stack.stage(DATA, JSON_LAYOUT)
    path = write_event(tmp_path, webhook_payload(data_url, metadata_url, "bare.csv.gz"))
    code, out, err = run_cli(capsys, "replay", path, "--bucket", other)
    assert code == 0, err
    body = json.loads(out)
    assert body["bucket"] == other and body["format"] == "csv.gz"
    assert body["url"].endswith(f"/{other}/bare.csv.gz") or body["url"].endswith("/bare.csv.gz")
    assert "?" not in body["url"] and SIGNATURE not in out + err  # the result link is redacted
    landed = stack.s3.get_object(Bucket=other, Key="bare.csv.gz")["Body"].read()
    assert gzip.decompress(landed) == HEADER + DATA
    assert "done: 4 rows" in err


def test_replay_failure_prints_the_code_and_lands_nothing(stack: Stack, tmp_path: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    data_url, metadata_url = stack.stage(DATA, b"[]")
    path = write_event(tmp_path, api_gateway_event(webhook_payload(data_url, metadata_url, "bad.csv")))
    code, out, err = run_cli(capsys, "replay", path)
    assert code == 1 and out == ""
    assert err.startswith("error: INVALID_METADATA: ")
    assert SIGNATURE not in err
    assert stack.target_keys() == [] and stack.pending_uploads() == []


@pytest.mark.parametrize(("content", "message"), [
    (b"{not json", "is not a JSON file"),
    (b'{"resource": "/upload"}', "VALIDATION_ERROR: the request has no body"),
    (b'{"task": {"occurrenceId": "o"}, "presignedUrls": {}, "sendParameters": {"s3_filename": "x.csv"}}',
     "VALIDATION_ERROR: presignedUrls.dataFile"),
])
def test_replay_of_a_bad_event(stack: Stack, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                               content: bytes, message: str) -> None:
    path = tmp_path / "event.json"
    path.write_bytes(content)
    code, out, err = run_cli(capsys, "replay", str(path))
    assert code == 1 and out == "" and message in err


def test_replay_tell_reports_the_outcome_as_the_functions_do(stack: Stack, tmp_path: Path, outcomes: None,
                                                             gateway: FakeCI360Gateway, bus: Bus,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    data_url, metadata_url = stack.stage(DATA, JSON_LAYOUT)
    path = write_event(tmp_path, webhook_payload(data_url, metadata_url, "told/replayed.csv", "occ-told"))
    code, out, err = run_cli(capsys, "replay", path, "--tell", "-q")
    assert code == 0, err
    body = json.loads(out)
    assert body["events"]["ci360"] == {"delivered": True, "attempts": 1, "status": 201}
    assert body["events"]["eventBridge"]["delivered"] is True
    event = told(gateway)
    assert (event["status"], event["occurrenceId"], event["key"], event["rows"]) == (
        "succeeded", "occ-told", "told/replayed.csv", "4")
    (routed,) = bus.events()
    assert routed["detail-type"] == "Audience landed" and routed["detail"]["mode"] == "replay"
    # A failed replay is told too, and still fails.
    _, bad_metadata = stack.stage(DATA, b"[]")
    path = write_event(tmp_path, webhook_payload(data_url, bad_metadata, "told/bad.csv", "occ-bad"))
    code, out, err = run_cli(capsys, "replay", path, "--tell", "-q")
    assert code == 1 and out == "" and "error: INVALID_METADATA: " in err
    told_line = next(line for line in err.splitlines() if line.startswith("outcome told: "))
    assert json.loads(told_line.removeprefix("outcome told: "))["ci360"]["delivered"] is True
    assert [e["status"] for e in gateway.received] == ["succeeded", "failed"]
    assert [e["detail-type"] for e in bus.events()] == ["Audience failed"]
    assert SIGNATURE not in out + err and SECRET not in out + err


def test_replay_without_tell_tells_no_one(stack: Stack, tmp_path: Path, outcomes: None,
                                          gateway: FakeCI360Gateway, bus: Bus,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    data_url, metadata_url = stack.stage(DATA, JSON_LAYOUT)
    path = write_event(tmp_path, webhook_payload(data_url, metadata_url, "untold.csv"))
    code, out, err = run_cli(capsys, "replay", path, "-q")
    assert code == 0, err
    assert "events" not in json.loads(out) and stack.landed("untold.csv") == HEADER + DATA
    assert gateway.requests == [] and bus.events() == []


# --- convert ------------------------------------------------------------------------------------

def test_convert_local_files_to_parquet(stack: Stack, files: tuple[str, str], disk_audit,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    data, metadata = files
    disk_audit.writes.clear()
    code, out, err = run_cli(capsys, "convert", data, "--metadata", metadata,
                         "--to", f"s3://{stack.target}/backfill/x.parquet",
                         "--column-types", '{"external_id": "bigint"}', "--compression", "zstd")
    assert code == 0, err
    assert disk_audit.writes == []  # read from disk, written only to S3
    body = json.loads(out)
    assert body["occurrenceId"].startswith("cli-") and body["format"] == "parquet"
    assert body["rows"] == 4 and body["bytesRead"] == len(DATA)
    assert body["schema"]["external_id"] == "bigint"
    table = pq.read_table(io.BytesIO(stack.landed("backfill/x.parquet")))
    assert table.num_rows == 4
    assert table.column_names == ["identity_id", "external_id", "email", "signup_date"]
    assert table.column("external_id").to_pylist() == [100001, 100002, 100003, 100004]
    assert table.column("email").to_pylist()[2] == 'say "hi"\nthere'
    metadata_of = pq.ParquetFile(io.BytesIO(stack.landed("backfill/x.parquet"))).metadata
    assert metadata_of.row_group(0).column(0).compression == "ZSTD"


def test_convert_local_files_to_csv_gz(stack: Stack, files: tuple[str, str],
                                       capsys: pytest.CaptureFixture[str]) -> None:
    data, metadata = files
    code, out, err = run_cli(capsys, "convert", data, "--metadata", metadata, "--to", f"s3://{stack.target}/x.csv.gz")
    assert code == 0, err
    assert json.loads(out)["rows"] == 4
    assert gzip.decompress(stack.landed("x.csv.gz")) == HEADER + DATA


def test_convert_without_header_from_file_urls(stack: Stack, files: tuple[str, str],
                                               capsys: pytest.CaptureFixture[str]) -> None:
    data, metadata = (Path(p).as_uri() for p in files)
    code, _, err = run_cli(capsys, "convert", data, "--metadata", metadata, "--to", f"s3://{stack.target}/raw.csv",
                       "--no-csv-header", "-q")
    assert code == 0, err
    assert stack.landed("raw.csv") == DATA


def test_convert_refuses_an_existing_key_with_no_overwrite(stack: Stack, files: tuple[str, str],
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    stack.s3.put_object(Bucket=stack.target, Key="taken.csv", Body=b"earlier")
    data, metadata = files
    code, out, err = run_cli(capsys, "convert", data, "--metadata", metadata, "--to", f"s3://{stack.target}/taken.csv",
                         "--no-overwrite")
    assert code == 1 and out == ""
    assert err.startswith(f"error: CONFLICT: s3://{stack.target}/taken.csv already exists")
    assert stack.landed("taken.csv") == b"earlier"
    code, _, err = run_cli(capsys, "convert", data, "--metadata", metadata, "--to", f"s3://{stack.target}/taken.csv")
    assert code == 0, err
    assert stack.landed("taken.csv") == HEADER + DATA


def test_convert_with_bad_values_as_nulls(stack: Stack, files: tuple[str, str],
                                          capsys: pytest.CaptureFixture[str]) -> None:
    data, metadata = files
    target = f"s3://{stack.target}/nulls.jsonl"
    code, out, _ = run_cli(capsys, "convert", data, "--metadata", metadata, "--to", target,
                       "--column-types", '{"email": "bigint"}', "--on-bad-value", "null")
    assert code == 0
    assert json.loads(out)["badValues"] == {"email": 4}
    rows = [json.loads(line) for line in stack.landed("nulls.jsonl").splitlines()]
    assert [row["email"] for row in rows] == [None] * 4
    code, _, err = run_cli(capsys, "convert", data, "--metadata", metadata, "--to", target,
                       "--column-types", '{"email": "bigint"}')
    assert code == 1 and err.startswith("error: BAD_VALUE: row 1, column 'email'")


def test_convert_from_presigned_urls(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    data_url, metadata_url = stack.stage(DATA, JSON_LAYOUT)
    code, out, err = run_cli(capsys, "convert", data_url, "--metadata", metadata_url,
                         "--to", f"s3://{stack.target}/from-urls.csv")
    assert code == 0, err
    assert stack.landed("from-urls.csv") == HEADER + DATA
    assert SIGNATURE not in out + err


def test_convert_from_a_presigned_url_of_a_deleted_file(stack: Stack,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    data_url, metadata_url = stack.stage(DATA, JSON_LAYOUT)
    key = urlsplit(data_url).path.split(f"/{stack.staging}/", 1)[1]
    stack.s3.delete_object(Bucket=stack.staging, Key=key)
    code, out, err = run_cli(capsys, "convert", data_url, "--metadata", metadata_url,
                         "--to", f"s3://{stack.target}/gone.csv")
    assert code == 1 and out == ""
    assert err.startswith("error: SOURCE_ERROR: the data file could not be fetched: HTTP 404")
    assert SIGNATURE not in err and stack.target_keys() == []


def test_convert_from_stdin(stack: Stack, files: tuple[str, str], monkeypatch: pytest.MonkeyPatch,
                            capsys: pytest.CaptureFixture[str]) -> None:
    class Stdin:
        buffer = io.BytesIO(DATA)

    monkeypatch.setattr(sys, "stdin", Stdin)
    code, out, err = run_cli(capsys, "convert", "-", "--metadata", files[1], "--to", f"s3://{stack.target}/in.csv")
    assert code == 0, err
    assert stack.landed("in.csv") == HEADER + DATA


@pytest.mark.parametrize("which", ["data", "metadata"])
def test_convert_of_a_missing_file(stack: Stack, files: tuple[str, str], tmp_path: Path, which: str,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    data, metadata = files
    missing = str(tmp_path / "missing.csv")
    data, metadata = (missing, metadata) if which == "data" else (data, missing)
    code, out, err = run_cli(capsys, "convert", data, "--metadata", metadata, "--to", f"s3://{stack.target}/m.csv")
    assert code == 1 and out == ""
    assert err.startswith(f"error: SOURCE_ERROR: the {which} file ")
    assert "missing.csv" in err and "No such file or directory" in err
    assert stack.target_keys() == [] and stack.pending_uploads() == []


def test_convert_of_a_directory_or_another_scheme(stack: Stack, files: tuple[str, str], tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    target = f"s3://{stack.target}/d.csv"
    code, _, err = run_cli(capsys, "convert", str(tmp_path), "--metadata", files[1], "--to", target)
    assert code == 1 and "cannot be read" in err
    code, _, err = run_cli(capsys, "convert", "s3://bucket/data.csv", "--metadata", files[1], "--to", target)
    assert code == 1 and err.startswith("error: VALIDATION_ERROR: ") and "(s3:// is not supported)" in err
    code, _, err = run_cli(capsys, "convert", "-", "--metadata", "-", "--to", target)
    assert code == 1 and "cannot both be standard input" in err


def test_python_dash_m_transforms_convert(stack: Stack, files: tuple[str, str]) -> None:
    """As an operator runs it: only the result JSON on stdout (no log lines), progress on stderr."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-m", "transforms", "convert", files[0], "--metadata", files[1],
                           "--to", f"s3://{stack.target}/sub.csv"],
                          capture_output=True, text=True, env=env, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["rows"] == 4
    assert "done: 4 rows" in done.stderr
    assert stack.landed("sub.csv") == HEADER + DATA


# --- progress -----------------------------------------------------------------------------------

@pytest.fixture
def big_files(tmp_path: Path) -> tuple[str, str, bytes]:
    data = big_audience(60_000)  # ~4 MB, read in 1 MiB pieces
    (tmp_path / "big.csv").write_bytes(data)
    (tmp_path / "big_metadata.json").write_bytes(JSON_LAYOUT)
    return str(tmp_path / "big.csv"), str(tmp_path / "big_metadata.json"), data


def test_progress_as_plain_lines_when_not_a_terminal(stack: Stack, big_files: tuple[str, str, bytes],
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    data, metadata, content = big_files
    code, out, err = run_cli(capsys, "convert", data, "--metadata", metadata, "--to", f"s3://{stack.target}/big.csv",
                         "--progress-interval", "0.000001")
    assert code == 0, err
    assert "\r" not in err
    lines = err.splitlines()
    progress, last = lines[:-1], lines[-1]
    assert len(progress) >= 3
    size = human_bytes(len(content))
    for line in progress:
        assert line.startswith("big.csv: ") and "%" in line and "MB/s" in line and f" of {size}" in line
    assert any("ETA " in line for line in progress)
    assert last.startswith(f"big.csv: done: 60,000 rows, {size} read, ")
    assert json.loads(out)["rows"] == 60_000
    assert stack.landed("big.csv") == HEADER + content


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_as_a_bar_redrawn_on_a_terminal(stack: Stack, big_files: tuple[str, str, bytes],
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    data, metadata, _ = big_files
    terminal = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    code, out, _ = run_cli(capsys, "convert", data, "--metadata", metadata, "--to", f"s3://{stack.target}/bar.csv.gz",
                       "--progress-interval", "0.000001")
    assert code == 0
    text = terminal.getvalue()
    assert text.count("\n") == 1 and text.endswith("\n")  # one line, redrawn in place
    frames = text.rstrip("\n").split("\r")[1:]
    assert len(frames) >= 3
    assert frames[0].startswith("bar.csv.gz [") and "%" in frames[0] and "MB/s" in frames[0]
    assert any("ETA " in frame for frame in frames)
    assert frames[-1].startswith(f"bar.csv.gz [{'#' * 24}] 100.0%  done: 60,000 rows")
    assert json.loads(out)["rows"] == 60_000


def test_a_failure_ends_the_bar_before_the_error(stack: Stack, files: tuple[str, str],
                                                 monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    terminal = FakeTerminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    code = main(["convert", files[0], "--metadata", files[1], "--to", f"s3://{stack.target}/x.parquet",
                 "--column-types", '{"email": "bigint"}', "--progress-interval", "0.000001"])
    assert code == 1
    assert "\nerror: BAD_VALUE: " in terminal.getvalue()
