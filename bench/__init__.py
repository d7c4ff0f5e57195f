"""`make bench`: our connector against the baseline SAS ships, on one local S3 (see BENCHMARKS.md)."""
