"""The fan-out's deployed pieces, read from the CloudFormation template `serverless package` writes: the
state machine (its ASL validated by asl-validator, as `make test` runs it), the roles of its execution
and of its functions, the webhook's grant to start it, and the alarm on failed executions.

The linters (cfn-lint, checkov) run on these templates in test_template.py.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support import packaging

pytestmark = pytest.mark.package

BUCKET = packaging.BUCKET
FUNCTIONS = ("FanoutPlan", "FanoutRange", "FanoutCheck", "FanoutPrepare", "FanoutCopy", "FanoutFinalize",
             "FanoutAbandon", "FanoutHandoff")
RUNNER = packaging.ROOT / "scripts" / "fanout-local.mjs"
TRANSIENT = {"Lambda.ServiceException", "Lambda.AWSLambdaException", "Lambda.SdkClientException",
             "Lambda.ClientExecutionTimeoutException", "Lambda.TooManyRequestsException",
             "CI360TransientError"}
MACHINE_ARN = ("arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:stateMachine:"
               "ci360-s3-connector-dev-fanout")


@pytest.fixture(scope="module")
def templates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Every default (the fast build of the same template as test_template.py's "default"), and every
    optional setting on."""
    base = tmp_path_factory.mktemp("sls-fanout-template")
    built = {"default": packaging.build("fanout", base / "fanout"),
             "everything": packaging.build("everything", base / "everything")}
    return {name: b.out / "cloudformation-template-update-stack.json" for name, b in built.items()}


def load(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def definition(template: dict[str, Any]) -> dict[str, Any]:
    """The ASL with Fn::Sub evaluated: ${Function.Arn} as a Lambda ARN, ${Parameter} as its default."""
    text = template["Resources"]["FanoutStateMachine"]["Properties"]["DefinitionString"]["Fn::Sub"]

    def value(match: re.Match[str]) -> str:
        name = match[1]
        if name.endswith(".Arn"):
            function = template["Resources"][name[:-4]]["Properties"]["FunctionName"]
            return f"arn:aws:lambda:us-east-1:123456789012:function:{function}"
        return str(template["Parameters"][name]["Default"])

    return json.loads(re.sub(r"\$\{([^}]+)\}", value, text))


def every_state(states: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = {}
    for name, state in states.items():
        found[name] = state
        if "ItemProcessor" in state:
            found.update(every_state(state["ItemProcessor"]["States"]))
    return found


def statements(role: dict[str, Any]) -> list[dict[str, Any]]:
    return [s for policy in role["Properties"]["Policies"] for s in policy["PolicyDocument"]["Statement"]]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_the_state_machine_is_standard_with_distributed_maps_over_the_ranges(
        templates: dict[str, Path]) -> None:
    template = load(templates["default"])
    machine = template["Resources"]["FanoutStateMachine"]["Properties"]
    assert machine["StateMachineType"] == "STANDARD"
    assert machine["RoleArn"] == {"Fn::GetAtt": ["FanoutStateMachineRole", "Arn"]}
    asl = definition(template)
    states = every_state(asl["States"])
    maps = {name: s for name, s in states.items() if s["Type"] == "Map"}
    assert set(maps) == {"LandRanges", "LandRangesAgain", "CopyParts"}
    for state in maps.values():
        assert state["ItemProcessor"]["ProcessorConfig"] == {"Mode": "DISTRIBUTED",
                                                             "ExecutionType": "STANDARD"}
        assert state["MaxConcurrency"] == 100  # fanout_max_concurrency's default
        assert state["ToleratedFailureCount"] == 0
        assert state["ResultPath"] is None  # the range outputs are read from S3, never carried
        assert "ranges" not in json.dumps(state["ItemSelector"])  # a child's input stays small
        (task,) = state["ItemProcessor"]["States"].values()
        worker = "fanoutCopy" if state is maps["CopyParts"] else "fanoutRange"
        assert task["Resource"].endswith(f":function:ci360-s3-connector-dev-{worker}")
    assert maps["LandRanges"]["ItemsPath"] == "$.ranges"
    # The assembly: PrepareAssembly's plan is in S3; the state carries one small item per copy batch.
    assert states["RedoOrFinalize"]["Default"] == "PrepareAssembly"
    assert states["PrepareAssembly"]["ResultPath"] == "$.assembly"
    assert states["PrepareAssembly"]["Next"] == "CopyParts"
    assert maps["CopyParts"]["ItemsPath"] == "$.assembly.batches" and maps["CopyParts"]["Next"] == "Finalize"
    assert maps["LandRangesAgain"]["ItemsPath"] == "$.check.redo"
    assert maps["LandRangesAgain"]["Next"] == "CheckRanges"  # the true start states are checked again
    everything = definition(load(templates["everything"]))
    assert every_state(everything["States"])["LandRanges"]["MaxConcurrency"] == 40


def test_transient_errors_are_retried_with_backoff_and_every_failure_is_abandoned(
        templates: dict[str, Path]) -> None:
    states = every_state(definition(load(templates["default"]))["States"])
    for name, state in states.items():
        if state["Type"] != "Task":
            continue
        (retry,) = state["Retry"]
        assert set(retry["ErrorEquals"]) == TRANSIENT, name  # CI360PermanentError and the rest: never
        assert retry["BackoffRate"] >= 2 and retry["MaxAttempts"] >= 5 and retry["JitterStrategy"] == "FULL"
        if name in ("LandRange", "LandRangeAgain", "CopyBatch"):
            assert "Catch" not in state  # a worker's failure fails its Map, whose Catch abandons
        elif name == "Abandon":
            assert "Catch" not in state and state["Next"] == "Failed"
        else:
            assert state["Catch"] == [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error",
                                       "Next": "Abandon"}]
    for name in ("LandRanges", "LandRangesAgain", "CopyParts"):
        assert states[name]["Catch"][0]["Next"] == "Abandon"
    assert states["Failed"]["Type"] == "Fail"
    assert states["Abandon"]["Parameters"]["error.$"] == "$.error"


def test_the_definition_is_valid_asl(templates: dict[str, Path], tmp_path: Path) -> None:
    """asl-validator (npm) on the definition in the packaged template, and on a broken copy of it: the
    validator does refuse what is not valid."""
    for path in templates.values():
        completed = subprocess.run(["node", str(RUNNER), "validate", "--template", str(path)],
                                   capture_output=True, text=True, timeout=120, cwd=packaging.ROOT)
        assert completed.returncode == 0, completed.stderr
        assert json.loads(completed.stdout)["valid"] is True
    broken = load(templates["default"])
    sub = broken["Resources"]["FanoutStateMachine"]["Properties"]["DefinitionString"]
    sub["Fn::Sub"] = sub["Fn::Sub"].replace('"Next": "CheckRanges"', '"Next": "NoSuchState"', 1)
    (tmp_path / "broken.json").write_text(json.dumps(broken))
    completed = subprocess.run(["node", str(RUNNER), "validate", "--template", str(tmp_path / "broken.json")],
                               capture_output=True, text=True, timeout=120, cwd=packaging.ROOT)
    assert completed.returncode == 2 and "NoSuchState" in completed.stderr, completed.stderr


def test_the_execution_role_invokes_exactly_its_functions_and_runs_only_its_own_map_runs(
        templates: dict[str, Path]) -> None:
    role = load(templates["default"])["Resources"]["FanoutStateMachineRole"]
    assert role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"] == {
        "Service": "states.amazonaws.com"}
    granted = {a: s["Resource"] for s in statements(role) for a in as_list(s["Action"])}
    assert set(granted) == {"lambda:InvokeFunction", "states:StartExecution", "states:DescribeExecution",
                            "states:StopExecution"}
    assert granted["lambda:InvokeFunction"] == [{"Fn::GetAtt": [f"{f}LambdaFunction", "Arn"]}
                                                for f in FUNCTIONS]
    assert _joined(granted["states:StartExecution"]) == MACHINE_ARN
    assert _joined(granted["states:DescribeExecution"]) == (
        "arn:${AWS::Partition}:states:${AWS::Region}:${AWS::AccountId}:execution:ci360-s3-connector-dev-fanout/*")
    assert granted["states:StopExecution"] == granted["states:DescribeExecution"]


def _joined(node: Any) -> str:
    """An Fn::Join of strings and Refs, as text (${AWS::Region} for a Ref)."""
    separator, parts = node["Fn::Join"]
    return separator.join(p if isinstance(p, str) else f"${{{p['Ref']}}}" for p in parts)


@pytest.mark.parametrize(("variant", "prefix"), [("default", ""), ("everything", "ci360/")])
def test_range_and_finalizer_roles_reach_only_the_bucket_and_prefix(templates: dict[str, Path], variant: str,
                                                                    prefix: str) -> None:
    resources = load(templates[variant])["Resources"]
    for role, writes in (("FanoutRangeRole", {"s3:PutObject", "s3:GetObject", "s3:AbortMultipartUpload"}),
                         ("FanoutFinalizerRole", {"s3:PutObject", "s3:GetObject", "s3:DeleteObject",
                                                  "s3:DeleteObjectVersion", "s3:AbortMultipartUpload",
                                                  "s3:ListMultipartUploadParts"})):
        s3 = [s for s in statements(resources[role]) if as_list(s["Action"])[0].startswith("s3:")]
        objects = [s for s in s3 if s["Resource"] == f"arn:aws:s3:::{BUCKET}/{prefix}*"]
        assert len(objects) == 1 and set(objects[0]["Action"]) == writes, role
        (listing,) = [s for s in s3 if s is not objects[0]]
        assert listing["Resource"] == f"arn:aws:s3:::{BUCKET}"
        assert listing["Condition"] == {"StringLike": {"s3:prefix": f"{prefix}*"}}
        for statement in statements(resources[role]):
            assert all(a != "*" and not a.endswith(":*") for a in as_list(statement["Action"])), role
            assert all(r != "*" for r in as_list(statement["Resource"])), role
    functions = {f: resources[f"{f}LambdaFunction"]["Properties"]["Role"]["Fn::GetAtt"][0] for f in FUNCTIONS}
    assert functions == {"FanoutPlan": "FanoutRangeRole", "FanoutRange": "FanoutRangeRole",
                         "FanoutCheck": "FanoutRangeRole", "FanoutPrepare": "FanoutFinalizerRole",
                         "FanoutCopy": "FanoutFinalizerRole", "FanoutFinalize": "FanoutFinalizerRole",
                         "FanoutAbandon": "FanoutFinalizerRole", "FanoutHandoff": "FanoutFinalizerRole"}
    shapes = {f: (resources[f"{f}LambdaFunction"]["Properties"]["Handler"],
                  resources[f"{f}LambdaFunction"]["Properties"]["Timeout"]) for f in FUNCTIONS}
    assert shapes["FanoutRange"] == ("handler/fanout.land_range", 900)
    assert shapes["FanoutPrepare"] == ("handler/fanout.prepare_assembly", 300)
    assert shapes["FanoutCopy"] == ("handler/fanout.copy_parts", 900)
    assert resources["FanoutRangeLambdaFunction"]["Properties"]["MemorySize"] == 3538


def test_the_webhook_may_start_only_the_fanout(templates: dict[str, Path]) -> None:
    resources = load(templates["default"])["Resources"]
    granted = {a: s["Resource"] for s in statements(resources["WebhookFunctionRole"])
               for a in as_list(s["Action"]) if a.startswith("states:")}
    assert set(granted) == {"states:StartExecution", "states:DescribeExecution"}
    assert _joined(granted["states:StartExecution"]) == MACHINE_ARN
    executions = MACHINE_ARN.replace(":stateMachine:", ":execution:")
    assert _joined(granted["states:DescribeExecution"]) == f"{executions}:*"
    env = resources["WebhookLambdaFunction"]["Properties"]["Environment"]["Variables"]
    # A name: `invoke local` resolves it offline, the webhook makes it the ARN.
    assert env["fanout_state_machine"] == "ci360-s3-connector-dev-fanout"
    assert (env["fanout_min_mb"], env["fanout_range_mb"]) == ("20480", "1024")
    assert env["local_fanout_state_machine"] == ""  # a local invoke starts none unless one is named
    # The worker and GET /jobs start nothing.
    for role in ("IamRoleLambdaExecution", "JobsFunctionRole"):
        text = json.dumps(resources[role])
        assert "states:" not in text, role


def test_a_failed_execution_raises_an_alarm(templates: dict[str, Path]) -> None:
    alarm = load(templates["default"])["Resources"]["FanoutFailedAlarm"]["Properties"]
    assert (alarm["Namespace"], alarm["MetricName"]) == ("AWS/States", "ExecutionsFailed")
    assert alarm["Statistic"] == "Sum"
    assert alarm["Dimensions"] == [{"Name": "StateMachineArn", "Value": {"Ref": "FanoutStateMachine"}}]
    assert (alarm["ComparisonOperator"], alarm["Threshold"]) == ("GreaterThanThreshold", 0)
    assert alarm["AlarmActions"]["Fn::If"][0] == "AlarmTopicSet"
