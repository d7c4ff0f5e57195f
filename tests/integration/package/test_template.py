"""Least privilege and the infrastructure, read from the CloudFormation template `serverless package` writes.

Optional grants are CloudFormation conditions on parameters whose defaults are the deployment's
settings; the template is evaluated here as CloudFormation would (conditions, Fn::If, Ref to a
parameter), so "present" below means "in the deployed stack", not merely "in the JSON".
Variants: the defaults (shared with tests/integration/package/test_package.py's build) and two more
(tests/support/packaging.py).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import packaging

pytestmark = pytest.mark.package

BUCKET = packaging.BUCKET
KMS_KEY = packaging.KMS_KEY_ARN
NO_VALUE = object()


class Stack:
    """A packaged template with its conditions and intrinsic functions evaluated."""

    def __init__(self, template: dict[str, Any]) -> None:
        self.raw = template
        self.parameters = {name: p.get("Default") for name, p in template.get("Parameters", {}).items()}
        self.conditions = {name: self._condition(body)
                           for name, body in template.get("Conditions", {}).items()}
        self.resources = {
            name: self.resolve(body) for name, body in template["Resources"].items()
            if "Condition" not in body or self.conditions[body["Condition"]]
        }

    def _condition(self, node: Any) -> bool:
        if isinstance(node, dict) and len(node) == 1:
            (fn, args), = node.items()
            if fn == "Fn::Equals":
                left, right = (self.resolve(a) for a in args)
                return left == right
            if fn == "Fn::Not":
                return not self._condition(args[0])
            if fn == "Fn::Or":
                return any(self._condition(a) for a in args)
            if fn == "Fn::And":
                return all(self._condition(a) for a in args)
            if fn == "Condition":
                return self._condition(self.raw["Conditions"][args])
        raise AssertionError(f"unexpected condition {node!r}")

    def resolve(self, node: Any) -> Any:
        """Refs to parameters become their default; pseudo parameters and resources stay symbolic."""
        if isinstance(node, list):
            return [v for v in (self.resolve(n) for n in node) if v is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            (fn, args), = node.items()
            if fn == "Ref":
                if args == "AWS::NoValue":
                    return NO_VALUE
                if args in self.parameters:
                    return self.parameters[args]
                return f"${{{args}}}" if args.startswith("AWS::") else {"Ref": args}
            if fn == "Fn::If":
                name, then, otherwise = args
                return self.resolve(then if self.conditions[name] else otherwise)
            if fn == "Fn::Join":
                parts = self.resolve(args[1])
                if all(isinstance(p, str) for p in parts):
                    return args[0].join(parts)
                return {"Fn::Join": [args[0], parts]}
        return {k: v for k, v in ((k, self.resolve(v)) for k, v in node.items()) if v is not NO_VALUE}

    def of_type(self, kind: str) -> dict[str, dict[str, Any]]:
        return {name: r for name, r in self.resources.items() if r["Type"] == kind}

    def statements(self, role: str = "IamRoleLambdaExecution") -> Iterator[dict[str, Any]]:
        """Every statement granted to a role: its inline policies and the AWS::IAM::Policy resources."""
        for policy in self.resources[role]["Properties"].get("Policies", []):
            yield from policy["PolicyDocument"]["Statement"]
        for policy in self.of_type("AWS::IAM::Policy").values():
            if {"Ref": role} in policy["Properties"]["Roles"]:
                yield from policy["Properties"]["PolicyDocument"]["Statement"]

    def granted(self, prefix: str, role: str = "IamRoleLambdaExecution") -> list[dict[str, Any]]:
        return [s for s in self.statements(role) if any(a.startswith(prefix) for a in actions(s))]

    def function(self, name: str) -> dict[str, Any]:
        return self.resources[f"{name.capitalize()}LambdaFunction"]["Properties"]


def actions(statement: dict[str, Any]) -> list[str]:
    value = statement["Action"]
    return [value] if isinstance(value, str) else list(value)


def resources(statement: dict[str, Any]) -> list[Any]:
    value = statement["Resource"]
    return value if isinstance(value, list) else [value]


@pytest.fixture(scope="session")
def stacks(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Stack]:
    base = tmp_path_factory.mktemp("sls-package")
    return {variant: Stack(packaging.build(variant, base).template) for variant in packaging.VARIANTS}


@pytest.fixture(scope="session")
def default(stacks: dict[str, Stack]) -> Stack:
    return stacks["default"]


@pytest.fixture(scope="session")
def everything(stacks: dict[str, Stack]) -> Stack:
    return stacks["everything"]


# -- least privilege ---------------------------------------------------------------------------------


LANDING_ROLES = ("IamRoleLambdaExecution", "WebhookFunctionRole")  # the worker's and the webhook's
# The framework's deploy-time custom resource that sets the account's API Gateway CloudWatch role
# (provider.logs.restApi); it may create and pass that role, so its iam:* resource is role/*.
FRAMEWORK_ROLE = "IamRoleCustomResourcesLambdaExecution"
# The fan-out's execution role and its functions' two roles (test_fanout_template.py).
FANOUT_ROLES = ("FanoutStateMachineRole", "FanoutRangeRole", "FanoutFinalizerRole")


@pytest.mark.parametrize("variant", list(packaging.VARIANTS))
def test_no_wildcard_actions_no_managed_full_access(stacks: dict[str, Stack], variant: str) -> None:
    stack = stacks[variant]
    roles = stack.of_type("AWS::IAM::Role")
    assert set(roles) == {*LANDING_ROLES, "JobsFunctionRole", FRAMEWORK_ROLE, *FANOUT_ROLES}
    for name, role in roles.items():
        if name == FRAMEWORK_ROLE:
            continue
        assert not role["Properties"].get("ManagedPolicyArns"), name
        for statement in stack.statements(name):
            assert statement["Effect"] == "Allow"
            for action in actions(statement):
                assert action != "*" and not action.endswith(":*"), (name, statement)
            for resource in resources(statement):
                assert resource != "*", (name, statement)
    assert "FullAccess" not in str(stack.raw)


@pytest.mark.parametrize(("variant", "prefix"), [("default", ""), ("everything", "ci360/")])
def test_s3_only_under_the_bucket_and_key_prefix(stacks: dict[str, Stack], variant: str, prefix: str) -> None:
    stack = stacks[variant]
    s3 = stack.granted("s3:")
    assert s3 == stack.granted("s3:", "WebhookFunctionRole")  # both landing roles, the same grants
    for statement in s3:
        for resource in resources(statement):
            if actions(statement) == ["s3:ListBucket"]:  # the existence check's 404 (overwrite=false)
                assert resource == f"arn:aws:s3:::{BUCKET}"
            else:
                assert resource == f"arn:aws:s3:::{BUCKET}/{prefix}*", statement
    writes = [s for s in s3 if "s3:PutObject" in actions(s)]
    assert len(writes) == 1
    # No s3:ListMultipartUploadParts (no code lists parts); deletes only for the integrity check.
    assert sorted(actions(writes[0])) == ["s3:AbortMultipartUpload", "s3:DeleteObject",
                                          "s3:DeleteObjectVersion", "s3:PutObject"]
    assert not any(a.startswith("s3:") for s in stack.statements("JobsFunctionRole") for a in actions(s))


def test_reads_only_for_the_result_link_and_the_existence_check(default: Stack, everything: Stack) -> None:
    assert [a for s in default.granted("s3:") for a in actions(s) if a not in (
        "s3:PutObject", "s3:AbortMultipartUpload", "s3:DeleteObject", "s3:DeleteObjectVersion")] == []
    reads = sorted(a for s in everything.granted("s3:") for a in actions(s)
                   if a in ("s3:GetObject", "s3:ListBucket"))
    assert reads == ["s3:GetObject", "s3:GetObject", "s3:ListBucket"]  # result_url_ttl, overwrite=false


def test_kms_grant_only_with_kms_key_id_and_only_that_key(stacks: dict[str, Stack]) -> None:
    assert stacks["default"].granted("kms:") == []
    assert stacks["bucket"].granted("kms:") == []
    assert stacks["everything"].granted("kms:") == stacks["everything"].granted("kms:", "WebhookFunctionRole")
    (statement,) = stacks["everything"].granted("kms:")
    assert sorted(actions(statement)) == ["kms:Decrypt", "kms:GenerateDataKey"]
    assert resources(statement) == [KMS_KEY]


def test_glue_grant_only_with_glue_database_and_only_that_database(default: Stack,
                                                                   everything: Stack) -> None:
    assert default.granted("glue:") == []
    (statement,) = everything.granted("glue:")
    assert set(actions(statement)) == {
        "glue:GetDatabase", "glue:GetTable", "glue:CreateTable", "glue:UpdateTable", "glue:GetPartition",
        "glue:CreatePartition", "glue:UpdatePartition", "glue:BatchCreatePartition"}
    arn = "arn:${AWS::Partition}:glue:${AWS::Region}:${AWS::AccountId}"
    assert resources(statement) == [f"{arn}:catalog", f"{arn}:database/ci360_audiences",
                                    f"{arn}:table/ci360_audiences/*"]


def test_queue_and_tables_exactly(default: Stack) -> None:
    queue = {"Fn::GetAtt": ["JobsQueue", "Arn"]}
    # The webhook enqueues and never receives; the worker receives and never enqueues.
    webhook = default.granted("sqs:", "WebhookFunctionRole")
    assert {a for s in webhook for a in actions(s)} == {"sqs:SendMessage", "sqs:GetQueueUrl"}
    worker = default.granted("sqs:")
    assert {a for s in worker for a in actions(s)} == {
        "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"}
    assert all(resources(s) == [queue] for s in webhook + worker)
    assert default.granted("dynamodb:") == default.granted("dynamodb:", "WebhookFunctionRole")
    (dynamodb,) = default.granted("dynamodb:")
    assert sorted(actions(dynamodb)) == ["dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem",
                                         "dynamodb:UpdateItem"]
    assert resources(dynamodb) == [{"Fn::GetAtt": ["IdempotencyTable", "Arn"]},
                                   {"Fn::GetAtt": ["JobsTable", "Arn"]}]
    # Metrics go through the logs (embedded metric format): no CloudWatch API.
    assert default.granted("cloudwatch:") == []
    assert {a.split(":")[0] for s in default.statements() for a in actions(s)} == {
        "logs", "s3", "sqs", "dynamodb", "events"}


def test_outcome_events_on_one_bus_and_exactly_the_named_secret(default: Stack, everything: Stack) -> None:
    """EventBridge: PutEvents on the configured bus of the account (its default bus unless named), both
    landing roles, nothing else of EventBridge. Secrets Manager: only with ci360_client_secret_arn, and
    only that secret, read."""
    for stack, bus in ((default, "default"), (everything, "marketing-data")):
        for role in LANDING_ROLES:
            (statement,) = stack.granted("events:", role)
            assert actions(statement) == ["events:PutEvents"]
            assert resources(statement) == [
                f"arn:${{AWS::Partition}}:events:${{AWS::Region}}:${{AWS::AccountId}}:event-bus/{bus}"]
        assert stack.granted("events:", "JobsFunctionRole") == []
    assert [s for role in LANDING_ROLES for s in default.granted("secretsmanager:", role)] == []
    for role in LANDING_ROLES:
        (statement,) = everything.granted("secretsmanager:", role)
        assert actions(statement) == ["secretsmanager:GetSecretValue"]
        assert resources(statement) == [packaging.CI360_SECRET_ARN]
    env = everything.function("webhook")["Environment"]["Variables"]
    assert env["ci360_client_secret_arn"] == packaging.CI360_SECRET_ARN
    assert "ci360_client_secret" not in env  # the plain secret is never deployed


def test_the_jobs_function_only_reads_job_records(default: Stack) -> None:
    assert default.function("jobs")["Role"] == {"Fn::GetAtt": ["JobsFunctionRole", "Arn"]}
    granted = {a: resources(s) for s in default.statements("JobsFunctionRole") for a in actions(s)}
    assert granted.keys() == {"dynamodb:GetItem", "logs:CreateLogStream", "logs:PutLogEvents"}
    assert granted["dynamodb:GetItem"] == [{"Fn::GetAtt": ["JobsTable", "Arn"]}]
    assert granted["logs:PutLogEvents"] == [
        "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:/aws/lambda/"
        "ci360-s3-connector-dev-jobs:*"]
    assert default.function("webhook")["Role"] == {"Fn::GetAtt": ["WebhookFunctionRole", "Arn"]}
    assert default.function("worker")["Role"] == {"Fn::GetAtt": ["IamRoleLambdaExecution", "Arn"]}
    logs = {a: resources(s) for s in default.statements("WebhookFunctionRole") for a in actions(s)
            if a.startswith("logs:")}
    assert logs["logs:PutLogEvents"] == [
        "arn:${AWS::Partition}:logs:${AWS::Region}:${AWS::AccountId}:log-group:/aws/lambda/"
        "ci360-s3-connector-dev-webhook:*"]


# -- functions, queue, tables, alarm --------------------------------------------------------------------


def test_functions(default: Stack) -> None:
    webhook, worker, jobs = (default.function(n) for n in ("webhook", "worker", "jobs"))

    def shape(function: dict[str, Any]) -> tuple[str, int, int]:
        return function["Handler"], function["Timeout"], function["MemorySize"]

    assert shape(webhook) == ("handler/webhook.handle", 29, 1024)
    assert shape(worker) == ("handler/worker.handle", 900, 3538)
    assert shape(jobs) == ("handler/jobs.handle", 10, 256)
    assert {f["Runtime"] for f in (webhook, worker, jobs)} == {"python3.12"}
    methods = {(m["Properties"]["HttpMethod"], m["Properties"]["ResourceId"]["Ref"]):
               m["Properties"]["ApiKeyRequired"] for m in default.of_type("AWS::ApiGateway::Method").values()}
    assert methods == {("POST", "ApiGatewayResourceUpload"): True,
                       ("GET", "ApiGatewayResourceJobsOccurrenceidVar"): True}


def test_environment(default: Stack, everything: Stack) -> None:
    env = default.function("worker")["Environment"]["Variables"]
    assert env == default.function("webhook")["Environment"]["Variables"]
    expected = {
        "s3_bucket_name": BUCKET, "column_types": "", "on_bad_value": "fail", "compression": "",
        "row_group_mb": "32", "resume_attempts": "5", "glue_database": "", "processing_mode": "auto",
        "download_connections": "12", "download_range_mb": "4",
        "sync_max_mb": "100", "kms_key_id": "", "encryption": "", "s3_key_prefix": "", "key_template": "",
        "overwrite": "true",
        "source_host_allowlist": "aws:s3", "max_columns": "500", "metadata_max_kb": "1024",
        "csv_header": "true", "result_url_ttl": "0",
        "jobs_queue": "ci360-s3-connector-dev-jobs", "jobs_table": "ci360-s3-connector-dev-jobs",
        "idempotency_table": "ci360-s3-connector-dev-idempotency",
        # What `invoke local` was given explicitly: nothing, so a local invoke uses no queue or table.
        "local_jobs_queue": "", "local_jobs_table": "", "local_idempotency_table": "",
        # Outcomes: off for CI360 until its events URL is set; EventBridge's default bus; 3 receives.
        "ci360_events_url": "", "ci360_client_secret_arn": "", "event_bus_name": "", "jobs_max_receives": "3",
    }
    assert {k: env.get(k) for k in expected} == expected
    assert everything.function("webhook")["Environment"]["Variables"]["kms_key_id"] == KMS_KEY


def test_worker_queue_dead_letters_and_alarm(default: Stack, everything: Stack) -> None:
    (mapping,) = default.of_type("AWS::Lambda::EventSourceMapping").values()
    assert mapping["Properties"]["BatchSize"] == 1
    # One message per batch: the worker raises to have it delivered again, and returns nothing.
    assert "FunctionResponseTypes" not in mapping["Properties"]
    # A burst of large jobs cannot take the account's whole concurrency (worker_max_concurrency).
    assert mapping["Properties"]["ScalingConfig"] == {"MaximumConcurrency": 5}
    (capped,) = everything.of_type("AWS::Lambda::EventSourceMapping").values()
    assert capped["Properties"]["ScalingConfig"] == {"MaximumConcurrency": 12}
    assert mapping["Properties"]["EventSourceArn"] == {"Fn::GetAtt": ["JobsQueue", "Arn"]}
    assert mapping["Properties"]["FunctionName"] == {"Fn::GetAtt": ["WorkerLambdaFunction", "Arn"]}
    queue = default.resources["JobsQueue"]["Properties"]
    assert queue["VisibilityTimeout"] > default.function("worker")["Timeout"]
    assert queue["VisibilityTimeout"] >= 6 * default.function("worker")["Timeout"]
    # jobs_max_receives, which the worker reads to know its last try (a string CloudFormation takes as 3).
    assert queue["RedrivePolicy"] == {"deadLetterTargetArn": {"Fn::GetAtt": ["JobsDeadLetterQueue", "Arn"]},
                                      "maxReceiveCount": "3"}
    assert everything.resources["JobsQueue"]["Properties"]["RedrivePolicy"]["maxReceiveCount"] == "5"
    dlq = default.resources["JobsDeadLetterQueue"]["Properties"]
    assert dlq["MessageRetentionPeriod"] == 14 * 24 * 3600
    assert queue["SqsManagedSseEnabled"] is True and dlq["SqsManagedSseEnabled"] is True
    # One alarm per way a job fails for good: this one, and the fan-out's (test_fanout_template.py).
    assert set(default.of_type("AWS::CloudWatch::Alarm")) == {"JobsDeadLetterAlarm", "FanoutFailedAlarm"}
    alarm = default.resources["JobsDeadLetterAlarm"]
    props = alarm["Properties"]
    assert (props["Namespace"], props["MetricName"]) == ("AWS/SQS", "ApproximateNumberOfMessagesVisible")
    assert props["Dimensions"] == [{"Name": "QueueName",
                                    "Value": {"Fn::GetAtt": ["JobsDeadLetterQueue", "QueueName"]}}]
    assert (props["ComparisonOperator"], props["Threshold"]) == ("GreaterThanThreshold", 0)
    assert "AlarmActions" not in props
    assert everything.resources["JobsDeadLetterAlarm"]["Properties"]["AlarmActions"] == [
        "arn:aws:sns:us-east-1:111122223333:ci360-alerts"]


def test_tables(default: Stack) -> None:
    for name, key, ttl in (("IdempotencyTable", "id", "expiration"),
                           ("JobsTable", "occurrence_id", "expires_at")):
        props = default.resources[name]["Properties"]
        assert props["BillingMode"] == "PAY_PER_REQUEST"
        assert props["KeySchema"] == [{"AttributeName": key, "KeyType": "HASH"}]
        assert props["AttributeDefinitions"] == [{"AttributeName": key, "AttributeType": "S"}]
        assert props["TimeToLiveSpecification"] == {"AttributeName": ttl, "Enabled": True}
        assert props["SSESpecification"] == {"SSEEnabled": True}
        assert props["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}


# -- the bucket ------------------------------------------------------------------------------------------


def test_an_existing_bucket_is_only_referenced(default: Stack) -> None:
    assert default.of_type("AWS::S3::Bucket").keys() == {"ServerlessDeploymentBucket"}
    assert "TargetBucketPolicy" not in default.resources


@pytest.mark.parametrize(("variant", "encryption"), [
    ("bucket", {"SSEAlgorithm": "AES256"}),
    ("everything", {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": KMS_KEY}),
])
def test_a_created_bucket_is_private_encrypted_tls_only_and_cleans_up_uploads(
        stacks: dict[str, Stack], variant: str, encryption: dict[str, str]) -> None:
    stack = stacks[variant]
    bucket = stack.resources["TargetBucket"]
    assert bucket["DeletionPolicy"] == "Retain"
    props = bucket["Properties"]
    assert props["BucketName"] == BUCKET
    assert props["PublicAccessBlockConfiguration"] == dict.fromkeys(
        ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"), True)
    (rule,) = props["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert rule["ServerSideEncryptionByDefault"] == encryption
    (lifecycle,) = props["LifecycleConfiguration"]["Rules"]
    assert lifecycle["Status"] == "Enabled"
    assert lifecycle["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}
    policy = stack.resources["TargetBucketPolicy"]["Properties"]
    assert policy["Bucket"] == {"Ref": "TargetBucket"}
    (deny,) = policy["PolicyDocument"]["Statement"]
    assert deny["Effect"] == "Deny" and deny["Principal"] == "*"
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert sorted(deny["Resource"]) == [f"arn:aws:s3:::{BUCKET}", f"arn:aws:s3:::{BUCKET}/*"]


def test_nothing_resolves_through_aws(stacks: dict[str, Stack]) -> None:
    """Packaging ran without credentials (build_environment drops AWS_*): no ${aws:...}, ${ssm:...} or
    ${cf:...} in serverless.yml, which `invoke local` and `package` could not resolve offline."""
    lines = (packaging.ROOT / "serverless.yml").read_text().splitlines()
    code = "\n".join(line.split(" #")[0] for line in lines if not line.lstrip().startswith("#"))
    assert "${param:bucket" in code
    for source in ("${aws:", "${ssm:", "${cf:", "${s3:"):
        assert source not in code


# -- the API and the deployment bucket ---------------------------------------------------------------------


def test_api_access_logging_is_on(default: Stack) -> None:
    """The framework writes the stage's access log settings after deploying (not in the template): the
    packaged configuration says so, and the template holds the log group and the account role setup."""
    state = json.loads((packaging.build("default").out / "serverless-state.json").read_text())
    rest_api = state["service"]["provider"]["logs"]["restApi"]
    assert rest_api["accessLogging"] is True
    assert {"$context.identity.sourceIp", "$context.status"} <= set(
        json.loads(rest_api["format"]).values())
    group = default.resources["ApiGatewayLogGroup"]["Properties"]
    assert group["LogGroupName"] == "/aws/api-gateway/ci360-s3-connector-dev"
    assert group["RetentionInDays"] == 30
    assert "CustomApiGatewayAccountCloudWatchRole" in default.resources


def test_the_deployment_bucket_blocks_public_access(stacks: dict[str, Stack]) -> None:
    for stack in stacks.values():
        props = stack.resources["ServerlessDeploymentBucket"]["Properties"]
        assert props["PublicAccessBlockConfiguration"] == dict.fromkeys(
            ("BlockPublicAcls", "BlockPublicPolicy", "IgnorePublicAcls", "RestrictPublicBuckets"), True)
        assert props["VersioningConfiguration"] == {"Status": "Enabled"}


def test_allowed_source_ips_adds_a_resource_policy_admitting_only_them(default: Stack,
                                                                      everything: Stack) -> None:
    assert "Policy" not in default.resources["ApiGatewayRestApi"]["Properties"]
    policy = everything.resources["ApiGatewayRestApi"]["Properties"]["Policy"]
    allow, deny = policy["Statement"]
    assert (allow["Effect"], allow["Action"], allow["Resource"]) == ("Allow", "execute-api:Invoke",
                                                                     "execute-api:/*")
    assert (deny["Effect"], deny["Action"], deny["Resource"]) == ("Deny", "execute-api:Invoke",
                                                                  "execute-api:/*")
    ips = deny["Condition"]["NotIpAddress"]["aws:SourceIp"]
    assert ips == {"Fn::Split": [",", "203.0.113.0/24,198.51.100.7/32"]}
    assert everything.parameters["AllowedSourceIps"] == "203.0.113.0/24,198.51.100.7/32"


# -- the linters -------------------------------------------------------------------------------------------

LINT_BIN = packaging.ROOT / ".venv-lint" / "bin"


def templates() -> list[Path]:
    return [packaging.build(v).out / "cloudformation-template-update-stack.json" for v in packaging.VARIANTS]


def lint_tool(name: str) -> str:
    tool = LINT_BIN / name
    if not tool.exists():
        pytest.fail(f"{tool} missing: run `make lint-tools` (requirements-lint.txt)")
    return str(tool)


def test_linters_cfn_lint_has_nothing_to_say(stacks: dict[str, Stack]) -> None:
    """No error, no warning, no informational finding, on every variant's template."""
    completed = subprocess.run([lint_tool("cfn-lint"), "--format", "parseable", *map(str, templates())],
                               capture_output=True, text=True, timeout=300)
    assert (completed.returncode, completed.stdout.strip()) == (0, ""), completed.stdout + completed.stderr


def test_linters_checkov_every_finding_fixed_or_suppressed_with_a_reason(stacks: dict[str, Stack]) -> None:
    command = [lint_tool("checkov"), "--framework", "cloudformation", "--output", "json",
               "--skip-download", "--compact"]
    for template in templates():
        command += ["--file", str(template)]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=600)
    reports = json.loads(completed.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    results = [r.get("results", {}) for r in reports]
    failed = [(c["check_id"], c["resource"]) for r in results for c in r.get("failed_checks", [])]
    assert failed == []
    assert sum(len(r.get("passed_checks", [])) for r in results) > 50, completed.stdout[-2000:]
    skipped = [c for r in results for c in r.get("skipped_checks", [])]
    assert skipped, "the suppressions in serverless.yml were not read"
    for check in skipped:
        assert len(check["check_result"].get("suppress_comment", "")) > 20, check["check_id"]
    assert completed.returncode == 0, completed.stderr[-3000:]
