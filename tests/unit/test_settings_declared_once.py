"""Each setting is declared once (transforms/settings.py SETTINGS), and everything else agrees with it.

serverless.yml (custom.settings with its default, provider.environment), the README's settings table (with
its default) and the ``Settings`` dataclass's defaults are read here and compared with the declaration,
both ways: nothing declared is missing from them, and nothing in them is undeclared.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any

import pytest
import yaml

from tests.support.helpers import ROOT
from transforms.errors import ConfigurationError
from transforms.settings import DECLARED, MIB, SETTINGS, Settings

# `${param:name, env:name, 'default'}`: the --param, then the environment variable, then the default.
SETTING_REFERENCE = re.compile(r"^\$\{param:(?P<param>[\w]+), env:(?P<env>\w+), '(?P<default>[^']*)'\}$")
# In the functions' environment but not settings: what `invoke local` was given (see Settings._resource),
# and Powertools' service name (the stack's name, not a choice).
UNDECLARED_ENVIRONMENT = {"local_jobs_queue", "local_jobs_table", "local_idempotency_table",
                          "local_fanout_state_machine", "POWERTOOLS_SERVICE_NAME"}
FUNCTION_SETTINGS = [s for s in SETTINGS if s.where == "function"]
CONFIGURABLE = [s for s in SETTINGS if s.where in ("function", "deploy")]


@pytest.fixture(scope="module")
def serverless() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "serverless.yml").read_text())


@pytest.fixture(scope="module")
def readme_table() -> dict[str, str]:
    """The README's settings table: environment variable -> its Default cell, one entry per name."""
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## Settings\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    table: dict[str, str] = {}
    for row in rows:
        cells = [cell.strip() for cell in row.strip("|").split(" | ")]
        if len(cells) != 3:
            continue  # the send parameters' table has two columns
        names = re.findall(r"`([^`]+)`", cells[0])
        defaults = [cells[1]] * len(names) if "`, `" not in cells[1] and ", " not in cells[1] else \
            [part.strip() for part in cells[1].split(",")]
        assert len(defaults) == len(names), f"README row {row!r}: one default per name"
        for name, default in zip(names, defaults, strict=True):
            assert name not in table, f"{name} appears twice in the README's settings table"
            table[name] = default
    return table


def readme_default(default: str) -> str:
    return f"`{default}`" if default else "empty"


def function_environments(serverless: dict[str, Any]) -> list[dict[str, str]]:
    """What each function sees: the provider's environment, with its own on top."""
    shared = serverless["provider"]["environment"]
    return [{**shared, **function.get("environment", {})} for function in serverless["functions"].values()]


def test_every_setting_is_in_custom_settings_with_its_declared_default(serverless: dict[str, Any]) -> None:
    custom = serverless["custom"]["settings"]
    for setting in CONFIGURABLE:
        assert setting.name in custom, f"{setting.name} is missing from serverless.yml custom.settings"
        match = SETTING_REFERENCE.match(custom[setting.name])
        assert match, f"custom.settings.{setting.name} is not ${{param:…, env:…, '…'}}"
        assert match["param"] == match["env"] == setting.name
        assert match["default"] == setting.default, f"{setting.name}: serverless.yml's default differs"
    assert set(custom) == {s.name for s in CONFIGURABLE}, "custom.settings holds an undeclared setting"


def test_every_function_setting_reaches_every_function(serverless: dict[str, Any]) -> None:
    for environment in function_environments(serverless):
        for setting in FUNCTION_SETTINGS:
            assert environment.get(setting.name) == f"${{self:custom.settings.{setting.name}}}", setting.name
        for setting in SETTINGS:
            if setting.where == "stack":
                assert environment.get(setting.name) == f"${{self:custom.stack.{setting.name}}}"
            if setting.where == "deploy":
                assert setting.name not in environment, f"{setting.name} is deploy time only"
        assert environment["s3_bucket_name"] == "${self:custom.bucket}"
        undeclared = set(environment) - set(DECLARED) - UNDECLARED_ENVIRONMENT
        assert not undeclared, f"undeclared settings in the functions' environment: {undeclared}"


def test_cloudformation_parameters_take_their_defaults_from_the_settings(serverless: dict[str, Any]) -> None:
    """A parameter that mirrors a setting names it: its default is never written a second time."""
    for name, parameter in serverless["resources"]["Parameters"].items():
        reference = re.fullmatch(r"\$\{self:custom\.settings\.(\w+)\}", str(parameter["Default"]))
        assert reference, f"Parameter {name}'s default is not a setting: {parameter['Default']!r}"
        assert reference[1] in DECLARED


def test_readme_table_lists_every_setting_with_its_declared_default(readme_table: dict[str, str]) -> None:
    for setting in SETTINGS:
        assert setting.name in readme_table, f"{setting.name} is missing from the README's settings table"
        cell = readme_table[setting.name]
        if setting.where == "required":
            assert cell.startswith("(required")
        elif setting.where == "stack":
            assert cell == "the stack's"
        else:
            assert cell == readme_default(setting.default), f"{setting.name}: README says {cell}"
    assert set(readme_table) == set(DECLARED), "the README documents an undeclared setting"


def test_readme_send_parameters_are_the_declared_ones() -> None:
    """The README's row of settings a send parameter overrides lists exactly those declared so."""
    text = (ROOT / "README.md").read_text()
    (row,) = [line for line in text.splitlines() if "| Override the setting of the same name" in line]
    overridden = set(re.findall(r"`([^`]+)`", row.split(" | ")[0]))
    assert overridden == {s.name for s in SETTINGS if s.send_parameter}


def test_settings_defaults_are_the_declared_defaults() -> None:
    defaults = Settings(bucket="b")
    read = Settings.from_env({"s3_bucket_name": "b"})
    fields = {f.name for f in dataclasses.fields(Settings)}
    attributes = {s.attribute for s in SETTINGS if s.attribute}
    # Every field is a declared setting's, except `local` (IS_LOCAL: set by `serverless invoke local`).
    assert fields - attributes == {"local"}
    assert attributes <= fields
    for setting in SETTINGS:
        if setting.attribute is None or setting.where in ("required", "stack"):
            continue
        assert getattr(defaults, setting.attribute) == setting.read(setting.default), setting.name
        # encryption is derived (encryption_setting): unset, with no key, it is the bucket's default;
        # so is event_bus_name: unset, a deployed function puts on the default bus.
        if setting.name not in ("encryption", "event_bus_name"):
            assert getattr(read, setting.attribute) == getattr(defaults, setting.attribute), setting.name
    assert read.encryption == "bucket-default"
    assert read.event_bus_name == "default"


def test_declarations_are_whole() -> None:
    for setting in SETTINGS:
        assert setting.description and setting.where in ("function", "deploy", "stack", "required", "local")
        if setting.name.endswith("_mb"):
            assert (setting.unit, setting.scale) == ("MiB", MIB), f"{setting.name}: every _mb is MiB"
        if setting.default and setting.where != "stack":
            setting.read(setting.default)  # the default itself passes the setting's parser


def test_mb_settings_all_count_mebibytes() -> None:
    settings = Settings.from_env({"s3_bucket_name": "b", "sync_max_mb": "3", "part_size_mb": "5",
                                  "row_group_mb": "2", "download_range_mb": "1", "metadata_max_kb": "7"})
    read = (settings.sync_max_bytes, settings.part_size, settings.row_group_bytes,
            settings.download_range_bytes, settings.metadata_max_bytes)
    assert read == (3 * MIB, 5 * MIB, 2 * MIB, MIB, 7 * 1024)


@pytest.mark.parametrize(("name", "value", "says"), [
    ("gzip_level", "10", "gzip_level must be between 1 and 9"),
    ("part_size_mb", "4", "part_size_mb must be at least 5"),
    ("upload_concurrency", "many", "upload_concurrency must be an integer"),
    ("read_timeout", "0", "read_timeout must be positive"),
    ("download_connections", "33", "download_connections must be between 1 and 32"),
    ("csv_header", "maybe", "csv_header must be true or false"),
    ("compression", "lz4", "compression must be one of snappy, zstd, gzip, none"),
    ("source_host_allowlist", "ftp://x", "source_host_allowlist entry 'ftp://x'"),
    ("key_template", "x.csv", "key_template must contain {s3_filename}"),
])
def test_a_bad_value_is_a_configuration_error_naming_the_setting(name: str, value: str, says: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Settings.from_env({"s3_bucket_name": "b", name: value})
    assert caught.value.message.startswith(f"environment setting {says}")


def test_the_bucket_has_no_default() -> None:
    with pytest.raises(ConfigurationError, match="environment setting s3_bucket_name is not set"):
        Settings.from_env({})
