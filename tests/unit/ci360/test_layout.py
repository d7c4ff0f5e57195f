from __future__ import annotations

import pytest

from tests.support.helpers import SAMPLES
from transforms.ci360.layout import Column, parse_layout
from transforms.errors import LayoutError


def test_json_layout_from_the_shared_sample() -> None:
    layout = parse_layout((SAMPLES / "metadata.json").read_bytes())
    assert layout.source_format == "json"
    assert layout.names == ["identity_id", "external_id", "email", "signup_date", "last_order_dttm",
                            "order_total"]
    assert layout.columns[1] == Column("external_id", "NUMERIC")


def test_csv_layout_from_the_shared_sample_has_no_trailing_newline() -> None:
    raw = (SAMPLES / "metadata.csv").read_bytes()
    assert not raw.endswith(b"\n")
    layout = parse_layout(raw)
    assert layout.source_format == "csv"
    assert layout.names == ["identity_id", "gender", "age_range", "external_id", "state_cd"]
    assert all(column.data_type is None for column in layout.columns)


def test_tolerant_spellings_bom_and_wrapper_object() -> None:
    raw = b'\xef\xbb\xbf{"Columns": [{"ColumnName": " id ", "DataType": "varchar"}, {"name": "n"}]}'
    layout = parse_layout(raw)
    assert layout.columns == (Column("id", "varchar"), Column("n", None))


def test_header_line_quotes_names_that_need_it() -> None:
    layout = parse_layout(b'[{"columnName": "a,b"}, {"columnName": "c"}]')
    assert layout.header_line() == b'"a,b",c\n'


def test_csv_layout_with_crlf_and_quotes() -> None:
    assert parse_layout(b'id,"x, y",z\r\n').names == ["id", "x, y", "z"]


@pytest.mark.parametrize("raw", [b"", b"  \n", b"[]", b"{}", b"[1]", b"a,,b", b"a,a", b'{"columns": 3}'])
def test_unusable_layouts_are_refused(raw: bytes) -> None:
    with pytest.raises(LayoutError):
        parse_layout(raw)
