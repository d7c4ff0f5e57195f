"""Fan-out: one job landed by many functions over byte ranges of its data file (issue 18, FANOUT.md).

A Step Functions Distributed Map is the orchestrator (``handler/fanout.py`` and ``serverless.yml``);
this room is what its Task states call: ``plan`` lists the ranges, ``land_range`` lands one,
``check_ranges`` proves (or redoes) their record boundaries, ``prepare_assembly`` plans the assembly
and starts its uploads, ``copy_parts`` copies one batch of parts inside S3 (a Map over the batches),
``finalize`` completes, verifies and records the landing, and ``abandon`` leaves nothing behind when any
step fails. Every input and output is JSON.
"""

from transforms.fanout.abandon import abandon
from transforms.fanout.assembly import copy_parts, prepare_assembly
from transforms.fanout.checks import check_ranges
from transforms.fanout.finalize import finalize
from transforms.fanout.plan import plan
from transforms.fanout.range_landing import land_range

__all__ = ["abandon", "check_ranges", "copy_parts", "finalize", "land_range", "plan", "prepare_assembly"]
