"""The functions' structured logger, with a formatter that cannot print a presigned URL whole."""

from __future__ import annotations

import logging

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

from transforms import SERVICE_NAME
from transforms.redact import scrub


class RedactingFormatter(LambdaPowertoolsFormatter):
    """Scrubs URL query strings from each formatted record, tracebacks included."""

    def format(self, record: logging.LogRecord) -> str:
        return scrub(super().format(record))


def make_logger() -> Logger:
    return Logger(service=SERVICE_NAME, logger_formatter=RedactingFormatter())
