"""Each benchmark's section of BENCHMARKS.md, replaced in place between its own markers so that what the
other benchmarks (and people) wrote there stays."""

from __future__ import annotations

from pathlib import Path

REPORT = Path(__file__).resolve().parent.parent / "BENCHMARKS.md"


def write_section(begin: str, end: str, section: str) -> None:
    """``section`` (which starts with ``begin`` and ends with ``end``) replaces what lies between the
    markers; without them it goes right under the file's title."""
    text = REPORT.read_text() if REPORT.exists() else "# Benchmarks\n"  # re-read right before writing
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        text = head + section + rest.split(end, 1)[1]
    else:
        title, _, rest = text.partition("\n")
        text = title + "\n\n" + section + "\n\n" + rest.lstrip("\n")
    REPORT.write_text(text)
