"""After the ranges ran: which start states were right, what to redo, and whether the job can be proven.

Each range reported its window's quote parity; a prefix XOR gives every range's true start state
(``boundaries.true_start_states``). A typed range that speculated wrongly is redone with its true
state (its parity does not depend on the state, so one redo is always enough). Only then are the
ranges' own findings believed: the first range (in row order) with unproven quoting sends the job back
to one function; the first with a record that does not fit (a bad value, a wrong column count) fails
the job with the one-function error, its row counted from the start of the file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from transforms.errors import BadValueError, ConnectorError, UnprocessableError
from transforms.fanout.boundaries import CombinedCounts, combine_counts, true_start_states
from transforms.fanout.errors import RangesIncomplete
from transforms.fanout.manifests import read_manifests
from transforms.formats.registry import format_named


@dataclass
class Resolution:
    manifests: list[dict[str, Any]]
    redo: list[dict[str, Any]] = field(default_factory=list)
    fallback: str | None = None
    error: ConnectorError | None = None
    counts: CombinedCounts | None = None  # CSV family: the whole file's record counts


def resolve(state: dict[str, Any], s3: Any) -> Resolution:
    count = int(state["rangeCount"])
    found = read_manifests(s3, state["job"]["bucket"], state["staging"], count)
    missing = [index for index, manifest in enumerate(found) if manifest is None]
    if missing:
        raise RangesIncomplete(f"{len(missing)} of {count} ranges have not landed "
                               f"(first: range {missing[0]})")
    manifests: list[dict[str, Any]] = found  # type: ignore[assignment]
    states = true_start_states([int(manifest["parity"]) for manifest in manifests])
    if not format_named(state["format"]).typed:
        counts = combine_counts((manifest["counts"] for manifest in manifests),
                                manifests[-1].get("lastByte"))
        resolution = Resolution(manifests, counts=counts)
        if counts.end_in_quotes:
            record = counts.newlines + 1
            resolution.error = UnprocessableError(
                f"the data file ends inside a quoted field: the quote opened in record {record} is never "
                "closed", [{"record": record}])
        return resolution
    redo = [{"index": m["index"], "start": m["start"], "end": m["end"], "startState": true}
            for m, true in zip(manifests, states, strict=True) if int(m["startState"]) != true]
    if redo:
        return Resolution(manifests, redo=redo)
    resolution = Resolution(manifests)
    rows_before = 0
    for manifest in manifests:
        if manifest.get("unproven"):
            resolution.fallback = (f"range {manifest['index']} (bytes {manifest['start']}-{manifest['end']}) "
                                   f"cannot be proven to start at a record boundary: {manifest['unproven']}")
            return resolution
        if manifest.get("error"):
            resolution.error = _range_error(manifest, rows_before)
            return resolution
        rows_before += int(manifest.get("rows") or 0)
    return resolution


def _range_error(manifest: dict[str, Any], rows_before: int) -> UnprocessableError:
    error = manifest["error"]
    bad = error.get("badValue")
    if bad:
        detail = (error.get("details") or [{}])[0]
        return BadValueError(rows_before + int(bad["row"]), bad["column"], str(detail.get("value", "")),
                             str(detail.get("expected", "")))
    return UnprocessableError(f"{error['message']} (in range {manifest['index']}, after {rows_before} rows "
                              "of the ranges before it)", error.get("details"))


def proven(state: dict[str, Any], s3: Any, step: str) -> Resolution:
    """The manifests of ranges every one of which is proven (PrepareAssembly's and Finalize's premise):
    a range still to redo or unproven means the state machine was left out of order, and a range's 422
    is the job's."""
    resolution = resolve(state, s3)
    if resolution.redo or resolution.fallback:
        raise RangesIncomplete(f"{step} was reached with ranges still to redo or unproven: "
                               + (resolution.fallback or f"{len(resolution.redo)} ranges to redo"))
    if resolution.error is not None:
        raise resolution.error
    return resolution


def check_ranges(state: dict[str, Any], settings: Any, services: Any) -> dict[str, Any]:
    """``{"redo": [items with their true startState]}``; with nothing to redo, ``"fallback"`` too when
    the job must go to one function. A range's 422 (with its row counted from the file's start) is
    raised here: the job fails as one function would have failed it."""
    resolution = resolve(state, services.s3)
    if resolution.error is not None:
        raise resolution.error
    answer: dict[str, Any] = {"redo": resolution.redo}
    if resolution.fallback:
        answer["fallback"] = resolution.fallback
    return answer
