"""Fan-out: one job landed by many functions over byte ranges of its data file (issue 18, FANOUT.md).

A Step Functions Distributed Map is the orchestrator (``handler/fanout.py`` and ``serverless.yml``);
this room is what its Task states call: ``plan`` lists the ranges, ``land_range`` lands one,
``check_ranges`` proves (or redoes) their record boundaries, ``finalize`` assembles and records the
landing, and ``abandon`` leaves nothing behind when any step fails. Every input and output is JSON.
"""

from transforms.fanout.abandon import abandon
from transforms.fanout.checks import check_ranges
from transforms.fanout.finalize import finalize
from transforms.fanout.plan import plan
from transforms.fanout.range_landing import land_range

__all__ = ["abandon", "check_ranges", "finalize", "land_range", "plan"]
