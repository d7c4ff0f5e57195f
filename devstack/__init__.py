"""A local stack for the tests, the demo and the benchmark: S3 servers (moto, SeaweedFS) on 127.0.0.1,
the stack's queue and tables on them, and CI360-style staging. Never shipped: the Lambda artifact
packages only ``handler/`` and ``transforms/`` (serverless.yml's package patterns)."""
