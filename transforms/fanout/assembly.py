"""The assembly spread over functions: PrepareAssembly plans it, the CopyParts Map's workers copy, Finalize
completes (``finalize.py``).

One function cannot copy a multi-terabyte landing inside S3 within Lambda's 15 minutes, so the copying is
dealt into batches (``batches.py``, ``fanout_copy_batch_mb`` each) that a Distributed Map runs at once.

``prepare_assembly`` (after CheckRanges proved every range) plans every target object and its parts
(``assemble.plan_parts``): one target at the key for the CSV family and JSON Lines, one per range for
Parquet and ORC (``naming.part_object``); it starts each target's multipart upload (CRC32, FULL_OBJECT,
the owner metadata, the deployment's encryption) and writes the whole plan (targets, upload ids, parts,
batches: 10,000 parts do not fit in Step Functions' 256 KiB of state) to the staging folder as
``assembly.json``. It returns only ``[{"batch": 0}, ...]`` (and counts) to the state. Run again, it
finds its plan and reuses it (and its uploads); a run that died after starting uploads but before
writing the plan left uploads that the next run aborts first (those at the targets started since the
plan began: the rule Abandon uses).

``copy_parts`` runs one batch: its parts' ``UploadPartCopy`` (or carried "read" parts), ``COPIERS`` at
once. A retried batch copies the same part numbers again; S3 keeps the last copy of a part number, so
nothing is duplicated. Finalize reads S3's own list of parts (ListParts), not what the workers said.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from os.path import commonprefix
from typing import Any

from aws_lambda_powertools import Logger

from transforms import SERVICE_NAME
from transforms.errors import SinkError
from transforms.fanout.abandon import CLOCK_SLACK_S
from transforms.fanout.assemble import (
    COPIERS,
    MAX_PARTS,
    Piece,
    _call,
    combined_crc32,
    copy_part,
    plan_parts,
)
from transforms.fanout.batches import deal
from transforms.fanout.checks import proven
from transforms.fanout.cleanup import abort_uploads
from transforms.fanout.errors import RangesIncomplete
from transforms.fanout.manifests import get_json, put_json
from transforms.fanout.naming import (
    COLUMNAR_OBJECTS,
    OWNER_METADATA,
    assembly_plan,
    owner_tag,
    part_object,
    range_object,
)
from transforms.formats.registry import format_named
from transforms.jobs.pipeline import encryption
from transforms.jobs.services import Services
from transforms.settings import Settings

logger = Logger(service=SERVICE_NAME, child=True)

STARTERS = 16  # multipart uploads started (and completed, in Finalize) at once: one per Parquet/ORC range


def owner(staging: str) -> dict[str, str]:
    """The metadata every landed object carries: which fan-out wrote it (abandon and a retried Finalize
    recognise their own objects by it)."""
    return {OWNER_METADATA: owner_tag(staging)}


def target_keys(key: str, format_name: str, count: int) -> list[str]:
    fmt = format_named(format_name)
    if fmt.name in COLUMNAR_OBJECTS:
        return [part_object(key, fmt, index, count) for index in range(count)]
    return [key]


def prepare_assembly(state: dict[str, Any], settings: Settings, services: Services) -> dict[str, Any]:
    """Plan and start the assembly; the state gets ``{"batches": [{"batch": n}, ...], "targets", "parts",
    "bytes"}``."""
    s3, bucket, staging = services.s3, state["job"]["bucket"], state["staging"]
    found = get_json(s3, bucket, assembly_plan(staging))
    if found is not None:
        logger.info("the assembly was planned by an earlier run of this step: reused")
        return summary(found)
    resolution = proven(state, s3, "the assembly")
    fmt = format_named(state["format"])
    pieces = [Piece(range_object(staging, int(m["index"])), int(m["bytes"]), m["crc32"], m["etag"])
              for m in resolution.manifests]
    keys = target_keys(state["job"]["key"], fmt.name, len(pieces))
    groups = [[index] for index in range(len(pieces))] if len(keys) > 1 else [list(range(len(pieces)))]
    targets: list[dict[str, Any]] = []
    for key, group in zip(keys, groups, strict=True):
        chosen = [pieces[index] for index in group]
        parts = plan_parts(chosen)
        if len(parts) > MAX_PARTS:
            raise SinkError(f"s3://{bucket}/{key} would take {len(parts)} parts; S3 allows {MAX_PARTS}",
                            "TooManyParts")
        position = {piece.key: index for index, piece in zip(group, chosen, strict=True)}
        targets.append({
            "key": key, "size": sum(piece.size for piece in chosen), "crc32": combined_crc32(chosen),
            "carried": sum(end - first for part in parts for kind, _, first, end in part if kind == "read"),
            "parts": [[[kind, position[piece.key], first, end] for kind, piece, first, end in part]
                      for part in parts]})
    since = float(state.get("startedAt") or time.time()) - CLOCK_SLACK_S
    orphans = abort_uploads(s3, bucket, commonprefix(keys), keys=set(keys), since=since)
    if orphans:
        logger.warning("aborted uploads an earlier run of this step started", extra={"aborted": orphans})
    extra = {"ContentType": fmt.content_type, "Metadata": owner(staging), **encryption(settings)}

    def start(target: dict[str, Any]) -> str | None:
        if not target["parts"]:  # an empty target is written whole by Finalize
            return None
        return _call("start a multipart upload", s3.create_multipart_upload, Bucket=bucket, Key=target["key"],
                     ChecksumAlgorithm="CRC32", ChecksumType="FULL_OBJECT", **extra)["UploadId"]

    with ThreadPoolExecutor(min(STARTERS, len(targets)), thread_name_prefix="start-upload") as pool:
        for target, upload in zip(targets, pool.map(start, targets), strict=True):
            target["upload"] = upload
    sizes = [part_sizes(target) for target in targets]
    plan = {"pieces": [[p.key, p.size, p.crc32, p.etag] for p in pieces], "targets": targets,
            "batches": [[list(span) for span in batch]
                        for batch in deal(sizes, settings.fanout_copy_batch_bytes)]}
    put_json(s3, bucket, assembly_plan(staging), plan, encryption(settings))
    answer = summary(plan)
    logger.info("assembly planned", extra={k: v for k, v in answer.items() if k != "batches"})
    return answer


def part_sizes(target: dict[str, Any]) -> list[int]:
    """A planned target's part sizes, in part order."""
    return [sum(end - first for _, _, first, end in part) for part in target["parts"]]


def summary(plan: dict[str, Any]) -> dict[str, Any]:
    """What the state carries: one small item per batch, and counts."""
    return {"batches": [{"batch": number} for number in range(len(plan["batches"]))],
            "targets": len(plan["targets"]), "parts": sum(len(t["parts"]) for t in plan["targets"]),
            "bytes": sum(int(t["size"]) for t in plan["targets"])}


def read_plan(s3: Any, bucket: str, staging: str) -> dict[str, Any]:
    plan = get_json(s3, bucket, assembly_plan(staging))
    if plan is None:
        raise RangesIncomplete(f"the assembly's plan is missing from the staging folder "
                               f"(s3://{bucket}/{assembly_plan(staging)}): PrepareAssembly did not run, or "
                               "the fan-out was abandoned")
    return plan


def copy_parts(state: dict[str, Any], item: dict[str, Any], settings: Settings,
               services: Services) -> dict[str, Any]:
    """One CopyParts worker: every part of batch ``item["batch"]``, ``COPIERS`` at once."""
    s3, bucket = services.s3, state["job"]["bucket"]
    plan = read_plan(s3, bucket, state["staging"])
    number = int(item["batch"])
    pieces = [Piece(*entry) for entry in plan["pieces"]]
    work = []
    for target_index, first, last in plan["batches"][number]:
        target = plan["targets"][target_index]
        for part_number in range(first, last + 1):
            slices = [(kind, pieces[piece], start, end)
                      for kind, piece, start, end in target["parts"][part_number - 1]]
            work.append((target["key"], target["upload"], part_number, slices))
    with ThreadPoolExecutor(min(COPIERS, len(work)), thread_name_prefix="copy-part") as pool:
        copied = sum(pool.map(lambda job: copy_part(s3, bucket, *job), work))
    return {"batch": number, "parts": len(work), "bytes": copied}
