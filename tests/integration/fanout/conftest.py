"""Fixtures the fan-out's outcome tests share with the state machine's and the outcomes' tests."""

from tests.integration.fanout.test_state_machine import fanout, template  # noqa: F401
from tests.integration.outcomes.test_outcomes import bus, gateway, outcomes  # noqa: F401
