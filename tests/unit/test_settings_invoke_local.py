"""Which queue and tables a function uses: a deployed function the stack's, a local invoke only what
was named. The real `serverless invoke local` runs in tests/integration/package/test_invoke_local.py."""

from __future__ import annotations

from transforms.settings import Settings

STACK = {"jobs_queue": "ci360-s3-connector-dev-jobs", "jobs_table": "ci360-s3-connector-dev-jobs",
         "idempotency_table": "ci360-s3-connector-dev-idempotency"}


def resources(settings: Settings) -> tuple[str | None, str | None, str | None]:
    return settings.jobs_queue, settings.jobs_table, settings.idempotency_table


def test_a_deployed_function_uses_the_stacks_queue_and_tables() -> None:
    env = {"s3_bucket_name": "b", **STACK, **{f"local_{k}": "" for k in STACK}}
    assert resources(Settings.from_env(env)) == tuple(STACK.values())


def test_a_local_invoke_uses_only_what_was_named() -> None:
    # What serverless.yml gives a local invoke when nothing was named: the stack's names, and empty local_*.
    env = {"s3_bucket_name": "b", "IS_LOCAL": "true", **STACK, **{f"local_{k}": "" for k in STACK}}
    assert resources(Settings.from_env(env)) == (None, None, None)
    named = {**env, "jobs_table": "mine", "local_jobs_table": "mine"}
    assert resources(Settings.from_env(named)) == (None, "mine", None)
    # Run outside the framework (no local_* variables): the variables themselves are what was named.
    assert resources(Settings.from_env({"s3_bucket_name": "b", "IS_LOCAL": "true", "jobs_queue": "q"})) == (
        "q", None, None)
