"""Where a fan-out's objects live: its staging folder, its range objects, and the objects it lands.

Athena (like Hive, whose FileInputFormat does the listing) skips every object whose name, or the name
of a folder on its path, starts with ``_`` or ``.``: "Athena ignores files that begin with an
underscore (_) or a dot (.)" (Athena user guide, "Table location in Amazon S3" / "Athena reads all data
stored in the Amazon S3 folder that you specify ... ignores files ... with names that begin with an
underscore or dot"). So the staging folder sits beside the target key, inside the key's folder (and
thus inside ``s3_key_prefix``, where the functions may write), named ``_ci360-fanout-<token>/``: a table
over the key's folder (or any folder above it) never reads a range object, even mid-job.

Every name is a function of the job alone (occurrence, task, bucket, key), so a retried range
overwrites its own objects rather than adding new ones, and a finalizer or an abandon finds them all.
"""

from __future__ import annotations

import hashlib
import posixpath

from transforms.formats.registry import Format

STAGING_PREFIX = "_ci360-fanout-"
COLUMNAR_OBJECTS = ("parquet", "orc")  # one object per range; every other format: one object at the key
INDEX_DIGITS = 5  # up to 99,999 ranges (the plan keeps them at or under 10,000)


def staging_prefix(occurrence_id: str, task_id: str, bucket: str, key: str) -> str:
    token = hashlib.sha256("\0".join((occurrence_id, task_id, bucket, key)).encode()).hexdigest()[:20]
    folder = posixpath.dirname(key)
    return f"{folder}/{STAGING_PREFIX}{token}/" if folder else f"{STAGING_PREFIX}{token}/"


OWNER_METADATA = "ci360-fanout"  # x-amz-meta-ci360-fanout on every landed object: which fan-out wrote it


def owner_tag(staging: str) -> str:
    """What a fan-out writes into its landed objects' metadata, so that an abandon removes only its own
    objects (never one that another writer put at the key meanwhile)."""
    return staging.rstrip("/").rsplit("/", 1)[-1]


def range_object(staging: str, index: int) -> str:
    return f"{staging}range-{index:0{INDEX_DIGITS}d}.part"


def range_manifest(staging: str, index: int) -> str:
    return f"{staging}range-{index:0{INDEX_DIGITS}d}.json"


def job_object(staging: str) -> str:
    return f"{staging}job.json"


def assembly_plan(staging: str) -> str:
    """PrepareAssembly's plan: every target, its upload and parts, and the copy batches."""
    return f"{staging}assembly.json"


def finalizing_marker(staging: str) -> str:
    return f"{staging}finalizing.json"


def split_extension(key: str, fmt: Format) -> tuple[str, str]:
    """(stem, extension as the key spells it): the longest of the format's suffixes the key ends with."""
    lowered = key.lower()
    for suffix in sorted(fmt.suffixes, key=len, reverse=True):
        if lowered.endswith(suffix):
            return key[:-len(suffix)], key[-len(suffix):]
    stem, extension = posixpath.splitext(key)
    return stem, extension


def part_object(key: str, fmt: Format, index: int, count: int) -> str:
    """The landed object of range ``index`` of ``count`` for Parquet and ORC, beside the key:
    ``audience.parquet`` -> ``audience-00003-of-00012.parquet``. Names sort in row order, and a table
    over the key's folder reads all of them (they start with the key's own name, never ``_`` or ``.``)."""
    stem, extension = split_extension(key, fmt)
    return f"{stem}-{index:0{INDEX_DIGITS}d}-of-{count:0{INDEX_DIGITS}d}{extension}"


def is_part_of(candidate: str, key: str, fmt: Format) -> bool:
    """Whether ``candidate`` is named as one of a fan-out landing's objects for ``key`` (any count)."""
    stem, extension = split_extension(key, fmt)
    middle = candidate[len(stem):len(candidate) - len(extension)] if candidate.startswith(stem) \
        and candidate.endswith(extension) else ""
    pieces = middle.split("-")
    return (len(pieces) == 4 and pieces[0] == "" and pieces[2] == "of" and pieces[1].isdigit()
            and pieces[3].isdigit() and len(pieces[1]) == INDEX_DIGITS == len(pieces[3]))
