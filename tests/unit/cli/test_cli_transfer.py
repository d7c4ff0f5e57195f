"""``python -m transforms replay`` and ``convert``: help, usage and target errors found before any
transfer, and the progress bar. The transfers, against moto: tests/integration/cli/test_cli_transfer.py."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from devstack.localstack import webhook_payload
from tests.support.helpers import run_cli, write_event
from transforms.cli.main import main
from transforms.cli.progress_bar import ProgressBar
from transforms.progress import Snapshot

# --- help ---------------------------------------------------------------------------------------

def test_help_lists_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["--help"])
    assert caught.value.code == 0
    out = capsys.readouterr().out
    for command in ("ddl", "replay", "convert"):
        assert f"    {command} " in out


# --- replay -------------------------------------------------------------------------------------


def test_replay_needs_a_bucket(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                               capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv("s3_bucket_name", raising=False)
    path = write_event(tmp_path, webhook_payload("https://x.s3.amazonaws.com/d", "https://x.s3.amazonaws.com/m",
                                                 "x.csv"))
    code, _, err = run_cli(capsys, "replay", path)
    assert code == 1 and err.startswith("error: CONFIGURATION_ERROR: ") and "s3_bucket_name" in err


def test_replay_of_a_missing_event_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run_cli(capsys, "replay", str(tmp_path / "nope.json"))
    assert code == 1 and "cannot read" in err and "nope.json" in err


# --- convert ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("to", "message"), [
    ("/local/x.csv", "expected s3://bucket/key"),
    ("s3://", "expected s3://bucket/key"),
    ("s3://bucket", "with a key after the bucket"),
    ("s3://bucket/", "with a key after the bucket"),
    ("s3://Bad_Bucket/x.csv", "is not an S3 bucket name"),
    ("s3://bucket/a/../x.csv", "the key in --to must not contain '.' or '..' segments"),
    ("s3://bucket/folder/", "the key in --to must name an object"),
])
def test_convert_with_a_bad_target(files: tuple[str, str], capsys: pytest.CaptureFixture[str],
                                   to: str, message: str) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["convert", files[0], "--metadata", files[1], "--to", to])
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert "argument --to" in err and message in err


@pytest.mark.parametrize("argv", [
    ["convert", "d.csv", "--to", "s3://b/x.csv"],  # --metadata is required
    ["convert", "d.csv", "--metadata", "m.json"],  # --to is required
    ["convert", "d.csv", "--metadata", "m.json", "--to", "s3://bb/x.csv", "--on-bad-value", "skip"],
    ["convert", "d.csv", "--metadata", "m.json", "--to", "s3://bb/x.csv", "--progress-interval", "0"],
    ["replay"],
    ["replay", "e.json", "--bucket", "No"],
])
def test_usage_errors_exit_2(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(argv)
    assert caught.value.code == 2 and "usage:" in capsys.readouterr().err


# --- progress -----------------------------------------------------------------------------------


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_bar_blanks_what_a_shorter_redraw_leaves_and_copes_without_a_size() -> None:
    terminal = FakeTerminal()
    bar = ProgressBar(terminal, "k.csv", clock=lambda: 0.0)
    assert bar.tty
    bar(Snapshot(2_500_000, None, 2.0))
    first = terminal.getvalue()
    assert first == "\rk.csv [????????????????????????]  2.5 MB  1.2 MB/s"
    bar.label = ""
    bar(Snapshot(0, None, 2.0))
    second = terminal.getvalue()[len(first):]
    assert second.startswith("\r[") and len(second) == len(first)  # padded over the longer line
    plain = io.StringIO()
    ProgressBar(plain)(Snapshot(1_500_000, 3_000_000, 1.0))
    assert plain.getvalue() == "progress: 50.0%, 1.5 MB of 3.0 MB, 1.5 MB/s, ETA 0:01\n"
    ProgressBar(plain)(Snapshot(1, 3_000_000, 3.0))  # a first byte after start-up: no ETA from that
    assert plain.getvalue().splitlines()[-1] == "progress: 0.0%, 1 B of 3.0 MB, 0.0 MB/s"
