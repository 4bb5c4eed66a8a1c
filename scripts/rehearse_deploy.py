#!/usr/bin/env python3
"""Deploy rehearsal: `cdk deploy` of the synthesized templates into an emulated AWS account.

Starts its own moto server on loopback, then does what `cdk bootstrap` and `cdk deploy` do:
deploys the CDK bootstrap template (CDKToolkit, from the installed aws-cdk CLI) in every region
the app uses, publishes every file asset of the asset manifests to the bootstrap bucket (files as
they are, directories zipped the way cdk-assets zips them), and creates CocoaEdge (us-east-1) and
Cocoa (ap-northeast-1) from their template URLs with the parameters infra/README.md says an
operator supplies. Then it checks what the emulator created, through the services' own APIs,
against infra/stack.json, lists every template resource the emulator did not create, prints a
table and a summary, and exits non-zero if anything declared is missing or wrong.

Usage: .local/venv/bin/python scripts/rehearse_deploy.py [--cdk-out infra/cdk.out] [--stock]

moto 5.2.5 refuses both templates as they are (its CloudFormation has no model for CloudFront,
WAFv2, API Gateway v2, CloudWatch alarms, Secrets Manager, ...; a GetAtt of such a resource in an
Output is a 500). So the server this script starts adds, unless --stock:
  - stand-ins for every type moto has no CloudFormation model for, and for custom resources
    (moto runs their Lambda handler only in Docker): they create nothing, answer Ref/GetAtt with
    marked placeholder values, and are reported as "not created by the emulator";
  - template properties moto's own CloudFormation models drop, passed to the same moto backend
    calls the service's API makes (FIDELITY below); nothing else.
--stock runs moto unpatched, to show what it does with the templates on its own.
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import traceback
import urllib.request
import zipfile
from collections import Counter, defaultdict
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
ACCOUNT = "123456789012"  # moto's default account
PARTITION = "aws"
STANDIN = "rehearsal-standin"  # every stand-in's physical id and attribute value holds this
STATE_DIR = REPO / ".local" / "rehearse-deploy"
BOOTSTRAP_TEMPLATE = REPO / "infra" / "node_modules" / "aws-cdk" / "lib" / "api" / "bootstrap" / "bootstrap-template.yaml"
STACK_ORDER = ["CocoaEdge", "Cocoa"]  # the web ACL first: Cocoa takes its ARN (infra/README.md)

# What the emulator side adds to moto's CloudFormation models (property -> moto backend call).
FIDELITY = [
    "AWS::Lambda::Function: Architectures, TracingConfig, Layers, EphemeralStorage, KmsKeyArn -> CreateFunction",
    "AWS::Lambda::LayerVersion: Ref is the layer version's ARN (moto's Ref gave its Python object)",
    "AWS::DynamoDB::Table: TimeToLiveSpecification -> UpdateTimeToLive, PointInTimeRecoverySpecification -> UpdateContinuousBackups",
    "AWS::KMS::Key: KeySpec, KeyUsage, MultiRegion -> CreateKey",
    "AWS::IAM::Role: ManagedPolicyArns -> AttachRolePolicy",
]


# ----------------------------------------------------------------------------------------------
# The emulator side: runs inside the moto server process (`--serve`).
# ----------------------------------------------------------------------------------------------


def serve(host: str, port: int, stock: bool, record: Path) -> None:
    try:  # Linux: end with the rehearsal even if it is killed outright
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    os.environ.setdefault("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")  # AWSLambdaBasicExecutionRole etc.
    from moto.cloudformation import parsing

    record.write_text(
        json.dumps({"supported": sorted(parsing.get_model_map()), "ignored": list(parsing.NULL_MODELS)}) + "\n"
    )
    if not stock:
        install_stand_ins(parsing, record)
        install_fidelity()
    from moto.server import main

    main(["-H", host, "-p", str(port)])


def install_stand_ins(parsing, record: Path) -> None:
    from moto.core.common_models import CloudFormationModel

    supported = set(parsing.get_model_map())

    class StandIn(CloudFormationModel):
        """A resource moto cannot create: it creates nothing and answers Ref/GetAtt with marked values."""

        __module__ = "moto.rehearsal_standin"  # moto's model metaclass reads the service from it

        def __init__(self, logical_id: str, resource_type: str, stack_id: str, account_id: str, region: str):
            self.logical_id, self.resource_type = logical_id, resource_type
            self.account_id, self.region = account_id, region
            if resource_type in ("AWS::SecretsManager::Secret",):  # Ref is an ARN
                self.physical_resource_id = f"arn:aws:secretsmanager:{region}:{account_id}:secret:{STANDIN}-{logical_id}"
            else:
                self.physical_resource_id = f"{STANDIN}-{logical_id}"
            with record.open("a") as out:
                out.write(json.dumps({"stack": stack_id, "logical": logical_id, "type": resource_type}) + "\n")

        @staticmethod
        def cloudformation_name_type() -> str:
            return ""

        @staticmethod
        def cloudformation_type() -> str:
            return "Rehearsal::StandIn"

        @classmethod
        def has_cfn_attr(cls, attr: str) -> bool:
            return True

        @classmethod
        def create_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
            return cls(kwargs["LogicalId"], kwargs["ResourceType"], kwargs["StackId"], account_id, region_name)

        @classmethod
        def update_from_cloudformation_json(cls, original_resource, new_resource_name, cloudformation_json, account_id, region_name):
            return original_resource

        @classmethod
        def delete_from_cloudformation_json(cls, resource_name, cloudformation_json, account_id, region_name):
            return None

        def delete(self, account_id: str, region: str) -> None:
            return None

        def is_created(self) -> bool:
            return True

        def get_cfn_attribute(self, attribute_name: str) -> str:
            name = f"{STANDIN}-{self.logical_id}".lower()
            if attribute_name.endswith("Arn"):
                service = self.resource_type.split("::")[1].lower()
                return f"arn:aws:{service}:{self.region}:{self.account_id}:{name}"
            if attribute_name.endswith("DomainName"):
                return f"{name}.invalid"
            if attribute_name.endswith("Endpoint"):
                return f"https://{name}.invalid"
            return f"{name}-{attribute_name}"

    original = parsing.resource_class_from_type

    def resource_class_from_type(resource_type: str):
        if resource_type in parsing.NULL_MODELS:
            return original(resource_type)
        if resource_type.startswith("Custom::") or resource_type not in supported:
            return StandIn
        return original(resource_type)

    parsing.resource_class_from_type = resource_class_from_type


def install_fidelity() -> None:
    """Template properties moto 5.2.5's CloudFormation models drop, applied with moto's backends."""
    from moto.awslambda import models as lambda_models
    from moto.dynamodb.models import dynamodb_backends
    from moto.dynamodb.models import table as dynamodb_table
    from moto.iam import models as iam_models
    from moto.kms import models as kms_models

    function_cls = lambda_models.LambdaFunction
    function_create = function_cls.create_from_cloudformation_json.__func__

    def create_function(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        properties = cloudformation_json["Properties"]
        extra = {
            key: properties[key]
            for key in ("Architectures", "TracingConfig", "Layers", "EphemeralStorage", "KmsKeyArn")
            if key in properties
        }
        if extra:
            backend = lambda_models.get_backend(account_id, region_name)
            original_create = backend.create_function

            def with_extra(spec):
                return original_create({**spec, **extra})

            backend.create_function = with_extra
            try:
                return function_create(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
            finally:
                del backend.create_function
        return function_create(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)

    function_cls.create_from_cloudformation_json = classmethod(create_function)
    lambda_models.LayerVersion.physical_resource_id = property(lambda self: self.arn)

    table_cls = dynamodb_table.Table
    table_create = table_cls.create_from_cloudformation_json.__func__

    def create_table(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        table = table_create(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
        properties = cloudformation_json["Properties"]
        backend = dynamodb_backends[account_id][region_name]
        if "TimeToLiveSpecification" in properties:
            backend.update_time_to_live(table.name, properties["TimeToLiveSpecification"])
        if "PointInTimeRecoverySpecification" in properties:
            backend.update_continuous_backups(table.name, properties["PointInTimeRecoverySpecification"])
        return table

    table_cls.create_from_cloudformation_json = classmethod(create_table)

    def create_key(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        properties = cloudformation_json["Properties"]
        key = kms_models.kms_backends[account_id][region_name].create_key(
            policy=json.dumps(properties["KeyPolicy"]) if isinstance(properties.get("KeyPolicy"), dict) else properties.get("KeyPolicy"),
            key_usage=properties.get("KeyUsage", "ENCRYPT_DECRYPT"),
            key_spec=properties.get("KeySpec", "SYMMETRIC_DEFAULT"),
            description=properties.get("Description"),
            tags=properties.get("Tags", []),
            multi_region=properties.get("MultiRegion", False),
        )
        key.key_rotation_status = properties.get("EnableKeyRotation", False)
        key.enabled = properties.get("Enabled", True)
        return key

    kms_models.Key.create_from_cloudformation_json = classmethod(create_key)

    role_cls = iam_models.Role
    role_create = role_cls.create_from_cloudformation_json.__func__

    def create_role(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs):
        role = role_create(cls, resource_name, cloudformation_json, account_id, region_name, **kwargs)
        backend = iam_models.iam_backends[account_id][iam_models.get_partition(region_name)]
        for arn in cloudformation_json["Properties"].get("ManagedPolicyArns", []):
            backend.attach_role_policy(arn, role.name)
        return role

    role_cls.create_from_cloudformation_json = classmethod(create_role)


# ----------------------------------------------------------------------------------------------
# The client side: bootstrap, publish, deploy, check.
# ----------------------------------------------------------------------------------------------


class Failure(Exception):
    """The rehearsal cannot go on (the emulator refused a stack, a file is missing, ...)."""


class Report:
    def __init__(self) -> None:
        self.rows: list[tuple[str, str, str, str]] = []  # (status, subject, check, detail)

    def check(self, ok: bool, subject: str, what: str, detail: str = "") -> bool:
        self.rows.append(("ok" if ok else "FAIL", subject, what, "" if ok else detail))
        return ok

    def note(self, subject: str, what: str, detail: str = "") -> None:
        self.rows.append(("note", subject, what, detail))

    @property
    def failed(self) -> list[tuple[str, str, str, str]]:
        return [r for r in self.rows if r[0] == "FAIL"]

    def print_table(self) -> None:
        width = min(36, max((len(r[1]) for r in self.rows), default=10))
        what_width = min(52, max((len(r[2]) for r in self.rows), default=10))
        print(f"\n{'':4}  {'subject':{width}}  {'check':{what_width}}  detail")
        for status, subject, what, detail in self.rows:
            print(f"{status:4}  {subject:{width}}  {what:{what_width}}  {detail}".rstrip())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MotoServer:
    def __init__(self, stock: bool) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.dir = STATE_DIR / f"run-{os.getpid()}"  # one per run: two rehearsals may run at once
        self.dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.dir / "moto.log"
        self.record_path = self.dir / "emulator.jsonl"
        self.record_path.unlink(missing_ok=True)
        env = {**os.environ, "MOTO_IAM_LOAD_MANAGED_POLICIES": "true", "PYTHONWARNINGS": "default"}
        command = [sys.executable, str(Path(__file__).resolve()), "--serve", str(self.port), "--record", str(self.record_path)]
        if stock:
            command.append("--stock")
        self.log = self.log_path.open("w")
        self.process = subprocess.Popen(command, stdout=self.log, stderr=subprocess.STDOUT, env=env, cwd=REPO)
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"{self.url}/moto-api/data.json", timeout=2).read()
                return
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise Failure(f"moto did not start:\n{self.log_tail(30)}")
                time.sleep(0.2)

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join([line for line in text.splitlines() if not line.startswith("127.0.0.1 - -")][-lines:])

    def log_size(self) -> int:
        try:
            return self.log_path.stat().st_size
        except OSError:
            return 0

    def last_error(self, since: int = 0, wait: float = 3.0) -> str:
        """The last exception line moto logged after `since` (its 500s carry no message)."""
        deadline = time.monotonic() + wait
        while True:
            with self.log_path.open("rb") as log:
                log.seek(since)
                text = log.read().decode(errors="replace")
            lines = [line for line in text.splitlines() if not line.startswith("127.0.0.1 - -")]
            for line in reversed(lines):
                if re.match(r"^([A-Za-z_][\w.]*)?(Error|Exception)\b", line) or re.match(r"^[\w.]+(Error|Exception): ", line):
                    return line.strip()
            if time.monotonic() > deadline:
                return ""
            time.sleep(0.2)

    def emulator_record(self) -> tuple[set[str], list[dict]]:
        lines = [json.loads(line) for line in self.record_path.read_text().splitlines() if line.strip()]
        return set(lines[0]["supported"]) | set(lines[0]["ignored"]), lines[1:]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


class Aws:
    """boto3 clients on the emulator, no retries (a retried CreateStack would hide the first error)."""

    def __init__(self, url: str) -> None:
        import boto3
        from botocore.config import Config

        self.boto3, self.url = boto3, url
        self.config = Config(retries={"total_max_attempts": 1}, connect_timeout=5, read_timeout=120)
        self.credentials = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
        self.cache: dict[tuple, object] = {}

    def client(self, service: str, region: str, credentials: dict | None = None):
        key = (service, region, json.dumps(credentials, sort_keys=True))
        if key not in self.cache:
            self.cache[key] = self.boto3.client(
                service, region_name=region, endpoint_url=self.url, config=self.config, **(credentials or self.credentials)
            )
        return self.cache[key]

    def assume(self, role_arn: str, region: str) -> dict:
        """What cdk-assets and `cdk deploy` do with the manifest's roles."""
        c = self.client("sts", region).assume_role(RoleArn=role_arn, RoleSessionName="rehearse-deploy")["Credentials"]
        return {"aws_access_key_id": c["AccessKeyId"], "aws_secret_access_key": c["SecretAccessKey"], "aws_session_token": c["SessionToken"]}


def substitute(text: str, region: str) -> str:
    return text.replace("${AWS::AccountId}", ACCOUNT).replace("${AWS::Partition}", PARTITION).replace("${AWS::Region}", region)


def zip_directory(directory: Path) -> bytes:
    """A directory asset the way cdk-assets packages it (yazl): every file, dotfiles too, symlinks
    followed, no directory entries, the 1980-01-01 DOS timestamp, the file's mode, deflated."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        files = sorted(p for p in directory.rglob("*") if p.is_file())
        for path in files:
            info = zipfile.ZipInfo(path.relative_to(directory).as_posix(), date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = (path.stat().st_mode & 0xFFFF) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3
            archive.writestr(info, path.read_bytes())
    return out.getvalue()


def sha256_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def stack_artifacts(cdk_out: Path) -> tuple[dict, dict]:
    manifest = json.loads((cdk_out / "manifest.json").read_text())
    stacks, assets = {}, {}
    for name, artifact in manifest["artifacts"].items():
        if artifact["type"] == "aws:cloudformation:stack":
            region = artifact["environment"].split("/")[-1]
            stacks[name] = {**artifact["properties"], "region": region, "name": artifact.get("displayName", name)}
        elif artifact["type"] == "cdk:asset-manifest":
            assets[name] = artifact["properties"]
    return stacks, assets


# -- README: the parameters an operator supplies -------------------------------------------------


def readme_parameters(readme: Path) -> set[str]:
    """The parameter names infra/README.md's "Deploying" section says an operator supplies."""
    text = readme.read_text()
    match = re.search(r"^## Deploying\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    if not match:
        raise Failure(f"{readme}: no '## Deploying' section")
    section = match.group(1)
    names = set(re.findall(r"--parameters ([A-Za-z0-9]+)=", section))
    for row in re.findall(r"^\s*\|([^|\n]*)\|", section, re.M):
        names |= set(re.findall(r"`([A-Za-z0-9]+)`", row))
    return names


def dummy_parameters(template: dict, names: set[str], edge_acl_arn: str | None) -> dict[str, str]:
    chosen = {
        "hersysUrl": "https://hersys.rehearsal.invalid/verify",
        "hersysParameterName": "processingNumber",
        "hersysResultStatus": "VALID=200,INVALID_OR_EXPIRED=406",
        "androidAttestationEnabled": "false",
        "iosAttestationEnabled": "true",  # not the same as Android's: a swapped wire shows
        "deviceCheckUrl": "https://devicecheck.rehearsal.invalid/v1/validate_device_token",
        "surveyRetentionUntil": "2029-03-31T23:59:59+09:00",
        "apiWebAclArn": edge_acl_arn or f"arn:aws:wafv2:us-east-1:{ACCOUNT}:global/webacl/cocoa-api/00000000-0000-4000-8000-000000000000",
    }
    values = {}
    for name in sorted(names):
        spec = template.get("Parameters", {}).get(name)
        if spec is None:
            continue
        if name in chosen:
            values[name] = chosen[name]
        elif spec.get("AllowedValues"):
            values[name] = spec["AllowedValues"][0]
        else:
            values[name] = f"rehearsal-{name}"  # NoEcho secrets and keys: distinct, recognisable
    return values


def check_parameters(report: Report, stack: str, template: dict, values: dict[str, str], readme_names: set[str]) -> None:
    """What CloudFormation checks of parameters and moto does not; and the README's list."""
    declared = template.get("Parameters", {})
    needed = {n for n, p in declared.items() if "Default" not in p}
    missing = sorted(needed - readme_names - {"BootstrapVersion"})
    report.check(not missing, stack, "README names every parameter without a default", ", ".join(missing))
    if stack == "Cocoa":
        unknown = sorted(readme_names - set(declared))
        report.check(not unknown, stack, "every README parameter exists in the template", ", ".join(unknown))
    bad = []
    for name, value in values.items():
        spec = declared[name]
        pattern = spec.get("AllowedPattern")
        if pattern and not re.fullmatch(pattern, value):
            bad.append(f"{name} !~ {pattern}")
        if spec.get("AllowedValues") and value not in spec["AllowedValues"]:
            bad.append(f"{name} not in {spec['AllowedValues']}")
        if len(value) < int(spec.get("MinLength", 0)):
            bad.append(f"{name} shorter than {spec['MinLength']}")
    report.check(not bad, stack, f"{len(values)} supplied parameters meet their constraints", "; ".join(bad))


# -- Rules (moto ignores a template's Rules) -----------------------------------------------------


def evaluate_rule_value(value, context: dict):
    if isinstance(value, dict) and len(value) == 1:
        (fn, arg), = value.items()
        if fn == "Ref":
            return context[arg]
        if fn == "Fn::Contains":
            return evaluate_rule_value(arg[1], context) in [evaluate_rule_value(v, context) for v in arg[0]]
        if fn == "Fn::Not":
            return not evaluate_rule_value(arg[0], context)
        if fn == "Fn::Equals":
            return evaluate_rule_value(arg[0], context) == evaluate_rule_value(arg[1], context)
        if fn == "Fn::And":
            return all(evaluate_rule_value(v, context) for v in arg)
        if fn == "Fn::Or":
            return any(evaluate_rule_value(v, context) for v in arg)
        raise Failure(f"the rehearsal cannot evaluate {fn} in a template rule")
    if isinstance(value, list):
        return [evaluate_rule_value(v, context) for v in value]
    return value


def check_rules(aws: Aws, report: Report, stack: str, template: dict, region: str, parameters: dict) -> None:
    context = {"AWS::Region": region, "AWS::AccountId": ACCOUNT, "AWS::Partition": PARTITION}
    for name, spec in template.get("Parameters", {}).items():
        value = parameters.get(name, spec.get("Default"))
        if spec.get("Type", "").startswith("AWS::SSM::Parameter::Value") and value is not None:
            value = aws.client("ssm", region).get_parameter(Name=value)["Parameter"]["Value"]
        context[name] = value
    for name, rule in template.get("Rules", {}).items():
        if "RuleCondition" in rule and not evaluate_rule_value(rule["RuleCondition"], context):
            continue
        failing = [a.get("AssertDescription", "") for a in rule["Assertions"] if not evaluate_rule_value(a["Assert"], context)]
        report.check(not failing, stack, f"rule {name} holds in {region}", "; ".join(failing))


# -- Bootstrap, assets, stacks -------------------------------------------------------------------


def wait_for_stack(cf, name: str, seconds: int = 90) -> dict:
    deadline = time.monotonic() + seconds
    while True:
        stack = cf.describe_stacks(StackName=name)["Stacks"][0]
        if not stack["StackStatus"].endswith("_IN_PROGRESS") or time.monotonic() > deadline:
            return stack
        time.sleep(0.5)


def stack_failure(cf, name: str, server: MotoServer, error: Exception | None, since: int) -> str:
    lines = []
    if error is not None:
        lines.append(f"CreateStack {name}: {type(error).__name__}: {str(error).splitlines()[0][:300]}")
    try:
        stack = cf.describe_stacks(StackName=name)["Stacks"][0]
        lines.append(f"status {stack['StackStatus']}: {stack.get('StackStatusReason', '')}")
        for event in cf.describe_stack_events(StackName=name)["StackEvents"]:
            lines.append(
                f"  event {event['LogicalResourceId']} {event['ResourceStatus']} {event.get('ResourceStatusReason', '')}".rstrip()
            )
    except Exception as e:  # the stack may not exist at all: moto refused the template
        lines.append(f"describe_stacks {name}: {str(e).splitlines()[0][:200]}")
    cause = server.last_error(since)
    if cause:
        lines.append(f"moto: {cause}")
    lines.append(f"(moto's log: {server.log_path})")
    return "\n".join(lines)


def create_stack(aws: Aws, server: MotoServer, region: str, name: str, credentials: dict | None, **kwargs) -> dict:
    cf = aws.client("cloudformation", region, credentials)
    error, since = None, server.log_size()
    try:
        cf.create_stack(StackName=name, Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM", "CAPABILITY_AUTO_EXPAND"], **kwargs)
        stack = wait_for_stack(cf, name)
        if stack["StackStatus"] == "CREATE_COMPLETE":
            return stack
    except Exception as e:
        error = e
    raise Failure(f"the emulator did not create stack {name} ({region}):\n{stack_failure(cf, name, server, error, since)}")


def bootstrap(aws: Aws, server: MotoServer, report: Report, regions: list[str], qualifier: str, required: int) -> None:
    """`cdk bootstrap aws://123456789012/<region>`: the CLI's own bootstrap template, as CDKToolkit."""
    if not BOOTSTRAP_TEMPLATE.exists():
        raise Failure(f"{BOOTSTRAP_TEMPLATE.relative_to(REPO)} is missing: run scripts/setup (npm ci in infra/)")
    body = BOOTSTRAP_TEMPLATE.read_text()
    for region in regions:
        stack = create_stack(
            aws, server, region, "CDKToolkit", None,
            TemplateBody=body,
            Parameters=[
                {"ParameterKey": "Qualifier", "ParameterValue": qualifier},
                # what `cdk bootstrap` passes when no --cloudformation-execution-policies are given
                {"ParameterKey": "CloudFormationExecutionPolicies", "ParameterValue": f"arn:{PARTITION}:iam::aws:policy/AdministratorAccess"},
            ],
        )
        outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs") or []}
        version = aws.client("ssm", region).get_parameter(Name=f"/cdk-bootstrap/{qualifier}/version")["Parameter"]["Value"]
        report.check(
            version.isdigit() and int(version) >= required and version == outputs.get("BootstrapVersion"),
            f"CDKToolkit {region}", f"bootstrap version {version} >= {required} (SSM = output)",
        )


def publish_assets(aws: Aws, report: Report, cdk_out: Path, asset_manifests: dict) -> dict[tuple[str, str, str], bytes]:
    """cdk-assets: every file asset to every destination, through the manifest's publishing role."""
    uploaded: dict[tuple[str, str, str], bytes] = {}
    for artifact in asset_manifests.values():
        manifest = json.loads((cdk_out / artifact["file"]).read_text())
        if manifest.get("dockerImages"):
            raise Failure(f"{artifact['file']}: container image assets need Docker, which this machine does not have")
        for asset_id, asset in manifest.get("files", {}).items():
            source = cdk_out / asset["source"]["path"]
            if "executable" in asset["source"]:
                raise Failure(f"asset {asset_id}: executable-built assets are not supported by the rehearsal")
            if asset["source"].get("packaging") == "zip" or source.is_dir():
                data = zip_directory(source)
            else:
                data = source.read_bytes()
            for destination in asset["destinations"].values():
                region = destination["region"]
                bucket, key = substitute(destination["bucketName"], region), substitute(destination["objectKey"], region)
                credentials = aws.assume(substitute(destination["assumeRoleArn"], region), region) if "assumeRoleArn" in destination else None
                s3 = aws.client("s3", region, credentials)
                s3.put_object(Bucket=bucket, Key=key, Body=data)
                head = s3.head_object(Bucket=bucket, Key=key)
                uploaded[(region, bucket, key)] = data
                label = asset.get("displayName", asset_id[:12])
                if not report.check(head["ContentLength"] == len(data), f"asset {label}"[:36], f"{asset_id[:12]} ({len(data)} bytes) published to {bucket}"):
                    raise Failure(f"asset {asset_id} did not land in {bucket}/{key}")
    return uploaded


def stack_resources(cf, name: str) -> list[dict]:
    resources, token = [], None
    while True:
        page = cf.list_stack_resources(StackName=name, **({"NextToken": token} if token else {}))
        resources += page["StackResourceSummaries"]
        token = page.get("NextToken")
        if not token:
            return resources


# -- Probes: does a resource the stack lists exist in its service? -------------------------------


def probe(aws: Aws, region: str, resource_type: str, physical: str, template_resource: dict) -> str | None:
    """None if the resource exists in its service, else why not; "skip" for types not probed."""
    c = lambda service: aws.client(service, region)  # noqa: E731
    try:
        if resource_type == "AWS::DynamoDB::Table":
            c("dynamodb").describe_table(TableName=physical)
        elif resource_type == "AWS::S3::Bucket":
            c("s3").head_bucket(Bucket=physical)
        elif resource_type == "AWS::KMS::Key":
            c("kms").describe_key(KeyId=physical)
        elif resource_type == "AWS::KMS::Alias":
            aliases = [a["AliasName"] for a in c("kms").list_aliases()["Aliases"]]
            return None if physical in aliases else f"alias {physical} not in list_aliases"
        elif resource_type == "AWS::Lambda::Function":
            c("lambda").get_function(FunctionName=physical)
        elif resource_type == "AWS::Lambda::LayerVersion":
            name, version = physical.split(":")[-2:]
            c("lambda").get_layer_version(LayerName=name, VersionNumber=int(version))
        elif resource_type == "AWS::Lambda::Permission":
            # moto gives permissions no physical id: the statement in the function's policy is the
            # permission. Each template permission must have its own statement (same principal).
            function, principal, wanted = template_resource["_permission"]
            policy = json.loads(c("lambda").get_policy(FunctionName=function)["Policy"])
            have = sum(1 for s in policy["Statement"] if s.get("Principal") in (principal, {"Service": principal}))
            return None if have >= wanted else f"{have} statements for {principal} in {function}'s policy, {wanted} permissions"
        elif resource_type == "AWS::IAM::Role":
            c("iam").get_role(RoleName=physical)
        elif resource_type == "AWS::IAM::ManagedPolicy":
            c("iam").get_policy(PolicyArn=physical)
        elif resource_type == "AWS::IAM::Policy":
            name = template_resource["Properties"]["PolicyName"]
            for role in template_resource["_resolved_roles"]:
                c("iam").get_role_policy(RoleName=role, PolicyName=name)
        elif resource_type == "AWS::Logs::LogGroup":
            groups = c("logs").describe_log_groups(logGroupNamePrefix=physical)["logGroups"]
            return None if any(g["logGroupName"] == physical for g in groups) else "not in describe_log_groups"
        elif resource_type == "AWS::SQS::Queue":
            c("sqs").get_queue_attributes(QueueUrl=physical, AttributeNames=["QueueArn"])
        elif resource_type == "AWS::Events::Rule":
            c("events").describe_rule(Name=physical)
        elif resource_type == "AWS::SSM::Parameter":
            c("ssm").get_parameter(Name=physical)
        elif resource_type == "AWS::ECR::Repository":
            c("ecr").describe_repositories(repositoryNames=[physical])
        else:
            return "skip"
    except Exception as e:  # botocore ClientError and friends
        return str(e).splitlines()[0][:200]
    return None


# -- The checks against infra/stack.json ---------------------------------------------------------


def statement_actions(statement: dict) -> list[str]:
    action = statement.get("Action", [])
    return [action] if isinstance(action, str) else list(action)


def statement_resources(statement: dict) -> list:
    resource = statement.get("Resource", [])
    return [resource] if not isinstance(resource, list) else resource


def references(value, found: set[str] | None = None) -> set[str]:
    """Logical ids a template value refers to (Ref / Fn::GetAtt / ${X} in Fn::Sub)."""
    found = set() if found is None else found
    if isinstance(value, list):
        for v in value:
            references(v, found)
    elif isinstance(value, dict):
        for key, inner in value.items():
            if key == "Ref" and isinstance(inner, str):
                found.add(inner)
            elif key == "Fn::GetAtt":
                found.add(inner[0] if isinstance(inner, list) else inner.split(".")[0])
            else:
                references(inner, found)
    return found


class Deployment:
    """What the emulator holds for the Cocoa stack, looked up through the services' APIs."""

    def __init__(self, aws: Aws, region: str, template: dict, resources: list[dict], parameters: dict) -> None:
        self.aws, self.region, self.template = aws, region, template
        self.physical = {r["LogicalResourceId"]: r["PhysicalResourceId"] for r in resources}
        self.parameters = parameters
        self.c = lambda service: aws.client(service, region)  # noqa: E731

    def known_arns(self) -> tuple[set[str], set[str]]:
        """ARNs of everything in the emulated account (exact), and ARN prefixes (bucket objects)."""
        exact, prefixes = set(), set()
        dynamodb = self.c("dynamodb")
        for name in dynamodb.list_tables()["TableNames"]:
            table = dynamodb.describe_table(TableName=name)["Table"]
            exact.add(table["TableArn"])
            exact |= {f"{table['TableArn']}/index/{i['IndexName']}" for i in table.get("GlobalSecondaryIndexes", [])}
        kms = self.c("kms")
        exact |= {k["KeyArn"] for k in kms.list_keys()["Keys"]}
        exact |= {f["FunctionArn"] for f in self.c("lambda").list_functions()["Functions"]}
        for bucket in self.c("s3").list_buckets()["Buckets"]:
            exact.add(f"arn:aws:s3:::{bucket['Name']}")
            prefixes.add(f"arn:aws:s3:::{bucket['Name']}/")
        sqs = self.c("sqs")
        for url in sqs.list_queues().get("QueueUrls", []):
            exact.add(sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"])
        return exact, prefixes


def check_tables(report: Report, d: Deployment, declaration: dict) -> dict[str, str]:
    names = {}
    dynamodb = d.c("dynamodb")
    stack_tables = {p for l, p in d.physical.items() if d.template["Resources"].get(l, {}).get("Type") == "AWS::DynamoDB::Table"}
    for table in declaration["tables"]:
        subject = f"table {table['name']}"
        try:
            found = dynamodb.describe_table(TableName=table["name"])["Table"]
        except Exception as e:
            report.check(False, subject, "exists", str(e).splitlines()[0][:150])
            continue
        names[table["id"]] = found["TableName"]
        report.check(found["TableName"] in stack_tables, subject, "exists, created by the stack")
        keys = {k["KeyType"]: k["AttributeName"] for k in found["KeySchema"]}
        expected = {"HASH": table["partitionKey"], **({"RANGE": table["sortKey"]} if table.get("sortKey") else {})}
        report.check(keys == expected, subject, f"key {'/'.join(expected.values())}", f"got {keys}" if keys != expected else "")
        indexes = {i["IndexName"]: i for i in found.get("GlobalSecondaryIndexes", [])}
        declared = {i["name"]: i for i in table.get("indexes", [])}
        report.check(set(indexes) == set(declared), subject, f"indexes {sorted(declared) or 'none'}", f"got {sorted(indexes)}")
        for name, index in declared.items():
            if name not in indexes:
                continue
            got = {k["KeyType"]: k["AttributeName"] for k in indexes[name]["KeySchema"]}
            want = {"HASH": index["partitionKey"], **({"RANGE": index["sortKey"]} if index.get("sortKey") else {})}
            projection = indexes[name]["Projection"]["ProjectionType"]
            ok = got == want and projection == index.get("projection", "ALL")
            report.check(ok, subject, f"index {name}: {'/'.join(want.values())}, {index.get('projection', 'ALL')}", f"got {got}, {projection}")
        ttl = dynamodb.describe_time_to_live(TableName=table["name"])["TimeToLiveDescription"]
        ok = ttl.get("TimeToLiveStatus") == "ENABLED" and ttl.get("AttributeName") == table["ttlAttribute"]
        report.check(ok, subject, f"TTL on {table['ttlAttribute']}", f"got {ttl}")
        billing = found.get("BillingModeSummary", {}).get("BillingMode")
        report.check(billing == "PAY_PER_REQUEST", subject, "on demand (README)", f"got {billing}")
        pitr = dynamodb.describe_continuous_backups(TableName=table["name"])["ContinuousBackupsDescription"]
        status = pitr.get("PointInTimeRecoveryDescription", {}).get("PointInTimeRecoveryStatus")
        report.check(status == "ENABLED", subject, "point-in-time recovery (README)", f"got {status}")
    return names


def check_keys(report: Report, d: Deployment, declaration: dict) -> dict[str, str]:
    arns = {}
    kms = d.c("kms")
    aliases = {a["AliasName"]: a.get("TargetKeyId") for a in kms.list_aliases()["Aliases"]}
    stack_keys = {p for l, p in d.physical.items() if d.template["Resources"].get(l, {}).get("Type") == "AWS::KMS::Key"}
    for key in declaration["kmsKeys"]:
        subject = f"key {key['id']}"
        target = aliases.get(key["alias"])
        if not report.check(target is not None, subject, f"alias {key['alias']}", "no such alias"):
            continue
        meta = kms.describe_key(KeyId=key["alias"])["KeyMetadata"]
        arns[key["id"]] = meta["Arn"]
        report.check(meta["KeyId"] in stack_keys and meta["KeyId"] == target, subject, "alias points at a key of the stack")
        ok = meta.get("KeySpec") == key["keySpec"] and meta.get("KeyUsage") == key["keyUsage"]
        report.check(ok, subject, f"{key['keySpec']}, {key['keyUsage']}", f"got {meta.get('KeySpec')}, {meta.get('KeyUsage')}")
        try:  # the key does what the functions ask of it
            if key["keyUsage"] == "SIGN_VERIFY":
                digest = hashlib.sha256(b"rehearsal").digest()
                sig = kms.sign(KeyId=key["alias"], Message=digest, MessageType="DIGEST", SigningAlgorithm="ECDSA_SHA_256")["Signature"]
                valid = kms.verify(KeyId=key["alias"], Message=digest, MessageType="DIGEST", Signature=sig, SigningAlgorithm="ECDSA_SHA_256")["SignatureValid"]
                public = kms.get_public_key(KeyId=key["alias"])
                report.check(valid and bool(public["PublicKey"]), subject, "signs (ECDSA_SHA_256), gives its public key")
            elif key["keyUsage"] == "GENERATE_VERIFY_MAC":
                mac = kms.generate_mac(KeyId=key["alias"], Message=b"rehearsal", MacAlgorithm="HMAC_SHA_256")["Mac"]
                valid = kms.verify_mac(KeyId=key["alias"], Message=b"rehearsal", Mac=mac, MacAlgorithm="HMAC_SHA_256")["MacValid"]
                report.check(valid, subject, "generates and verifies an HMAC_SHA_256")
        except Exception as e:
            report.check(False, subject, f"usable for {key['keyUsage']}", str(e).splitlines()[0][:150])
    return arns


def check_buckets(report: Report, d: Deployment, declaration: dict, functions: dict) -> dict[str, str]:
    """The declared bucket is the one every `${bucket:ID}` consumer sees."""
    names = {}
    s3 = d.c("s3")
    stack_buckets = {p for l, p in d.physical.items() if d.template["Resources"].get(l, {}).get("Type") == "AWS::S3::Bucket"}
    for bucket in declaration["buckets"]:
        subject = f"bucket {bucket['id']}"
        seen = set()
        for fn in declaration["functions"]:
            for var, value in fn["environment"].items():
                if value == f"${{bucket:{bucket['id']}}}" and fn["name"] in functions:
                    seen.add(functions[fn["name"]].get("Environment", {}).get("Variables", {}).get(var))
        if not report.check(len(seen) == 1, subject, "one bucket for every function that uses it", f"got {sorted(map(str, seen))}"):
            continue
        name = seen.pop()
        names[bucket["id"]] = name
        report.check(name in stack_buckets, subject, "a bucket the stack created", name)
        try:
            s3.head_bucket(Bucket=name)
            rules = s3.get_bucket_encryption(Bucket=name)["ServerSideEncryptionConfiguration"]["Rules"]
            algorithm = rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"]
            report.check(True, subject, f"exists, encrypted ({algorithm})")
        except Exception as e:
            report.check(False, subject, "exists, encrypted", str(e).splitlines()[0][:150])
        if name != bucket["name"]:
            report.note(subject, f"deployed as {name}", f"stack.json's name {bucket['name']!r} is the local stack's; the app lets CloudFormation name it")
    return names


def expected_value(value: str, names: dict, parameters: dict, template: dict) -> str:
    """A regular expression for a declared variable's value with its placeholders resolved."""
    parts, pos = [], 0
    for m in re.finditer(r"\$\{([a-z]+):([A-Za-z0-9_-]+)\}", value):
        parts.append(re.escape(value[pos : m.start()]))
        kind, name = m.groups()
        if kind == "setting":
            spec = template["Parameters"].get(name)
            if spec is not None:
                parts.append(re.escape(parameters.get(name, spec.get("Default", ""))))
            else:  # derived from a resource (the downloads distribution: a stand-in here)
                parts.append(r"https://[^\s/]+")
        elif kind == "function":
            parts.append(re.escape(name))
        else:
            resolved = names.get(kind, {}).get(name)
            parts.append(re.escape(resolved) if resolved else "(?!)")  # an unresolvable placeholder never matches
        pos = m.end()
    parts.append(re.escape(value[pos:]))
    return "".join(parts)


def check_functions(
    report: Report, d: Deployment, declaration: dict, uploaded: dict, template_names: dict, parameters: dict
) -> None:
    lam, iam = d.c("lambda"), d.c("iam")
    exact_arns, arn_prefixes = d.known_arns()
    resources = d.template["Resources"]
    role_policies = defaultdict(list)  # role logical id -> template AWS::IAM::Policy resources
    for logical, resource in resources.items():
        if resource["Type"] == "AWS::IAM::Policy":
            for role in resource["Properties"].get("Roles", []):
                for ref in references(role):
                    role_policies[ref].append(resource)
    secrets = defaultdict(list)
    for secret in declaration["operatorSecrets"]:
        for fn in secret["functions"]:
            secrets[fn].append(secret["variable"])
    by_function_name = {r["Properties"].get("FunctionName"): (l, r) for l, r in resources.items() if r["Type"] == "AWS::Lambda::Function"}

    for fn in declaration["functions"]:
        subject = f"function {fn['name']}"
        try:
            got = lam.get_function(FunctionName=fn["name"])
        except Exception as e:
            report.check(False, subject, "exists", str(e).splitlines()[0][:150])
            continue
        config = got["Configuration"]
        report.check(fn["name"] in d.physical.values(), subject, "exists, created by the stack")
        ok = config.get("Runtime") == "provided.al2023" and config.get("Architectures") == ["arm64"] and config.get("Handler") == "bootstrap"
        report.check(ok, subject, "provided.al2023, arm64, handler bootstrap", f"got {config.get('Runtime')}, {config.get('Architectures')}, {config.get('Handler')}")

        variables = config.get("Environment", {}).get("Variables", {})
        expected_names = set(fn["environment"]) | set(secrets[fn["name"]])
        extra, missing = sorted(set(variables) - expected_names), sorted(expected_names - set(variables))
        report.check(not extra and not missing, subject, f"{len(expected_names)} variables, exactly the declared", f"missing {missing}, extra {extra}")
        wrong = []
        for var, value in fn["environment"].items():
            pattern = expected_value(value, template_names, parameters, d.template)
            if var in variables and not re.fullmatch(pattern, variables[var]):
                wrong.append(f"{var}={variables[var]!r}")
        for var in secrets[fn["name"]]:
            parameter = var.replace("_", "")
            if var in variables and variables[var] != parameters.get(parameter):
                wrong.append(f"{var} is not parameter {parameter}")
        report.check(not wrong, subject, "values resolved from the placeholders", "; ".join(wrong)[:300])

        # The code: what was published for it, byte for byte.
        location = got.get("Code", {}).get("Location", "")
        key = location.rsplit("/", 1)[-1]
        data = next((v for (region, _, k), v in uploaded.items() if region == d.region and k == key), None)
        if report.check(data is not None, subject, "code is a published asset", f"code location {location!r}"):
            ok = config["CodeSha256"] == sha256_b64(data) and config["CodeSize"] == len(data)
            report.check(ok, subject, f"code = asset {key[:12]} ({len(data)} bytes, sha256)", f"got {config['CodeSize']} bytes, {config['CodeSha256']}")
            check_artefact(report, subject, data)

        # The role: exists, with the inline policies and managed policies the template attaches.
        role_name = config["Role"].rsplit("/", 1)[-1]
        try:
            iam.get_role(RoleName=role_name)
        except Exception as e:
            report.check(False, subject, f"role {role_name} exists", str(e).splitlines()[0][:150])
            continue
        logical_fn, resource = by_function_name.get(fn["name"], (None, None))
        role_logical = next(iter(references(resource["Properties"]["Role"]))) if resource else None
        want_inline = {p["Properties"]["PolicyName"]: p for p in role_policies.get(role_logical, [])}
        have_inline = set(iam.list_role_policies(RoleName=role_name)["PolicyNames"])
        report.check(have_inline == set(want_inline), subject, f"role has the template's inline policies ({len(want_inline)})", f"got {sorted(have_inline)}")
        problems = []
        for name, policy in want_inline.items():
            if name not in have_inline:
                continue
            document = iam.get_role_policy(RoleName=role_name, PolicyName=name)["PolicyDocument"]
            if isinstance(document, str):
                document = json.loads(document)
            have = [(sorted(statement_actions(s)), len(statement_resources(s))) for s in document["Statement"]]
            want = [(sorted(statement_actions(s)), len(statement_resources(s))) for s in policy["Properties"]["PolicyDocument"]["Statement"]]
            if sorted(have) != sorted(want):
                problems.append(f"{name}: statements {have} != template {want}")
            for statement in document["Statement"]:
                for arn in statement_resources(statement):
                    if arn == "*":
                        if not all(a.startswith("xray:") for a in statement_actions(statement)):
                            problems.append(f"* resource for {statement_actions(statement)}")
                    elif arn not in exact_arns and not any(arn.startswith(p) for p in arn_prefixes):
                        problems.append(f"{statement_actions(statement)} on {arn}: no such resource")
        report.check(not problems, subject, "its policies: template's actions, on resources that exist", "; ".join(problems)[:400])
        want_managed = set()
        if resource is not None:
            role_resource = resources.get(role_logical, {})
            for arn in role_resource.get("Properties", {}).get("ManagedPolicyArns", []):
                if isinstance(arn, dict) and "Fn::Join" in arn:
                    arn = arn["Fn::Join"][0].join(PARTITION if p == {"Ref": "AWS::Partition"} else str(p) for p in arn["Fn::Join"][1])
                want_managed.add(arn)
        have_managed = {p["PolicyArn"] for p in iam.list_attached_role_policies(RoleName=role_name)["AttachedPolicies"]}
        report.check(have_managed == want_managed, subject, "role has the template's managed policies", f"got {sorted(have_managed)}, want {sorted(want_managed)}")

        # Scheduled functions: their rule, on their declared schedule, targets them.
        if fn.get("schedule"):
            events = d.c("events")
            rules = events.list_rule_names_by_target(TargetArn=config["FunctionArn"])["RuleNames"]
            schedules = {r: events.describe_rule(Name=r).get("ScheduleExpression") for r in rules}
            report.check(fn["schedule"] in schedules.values(), subject, f"a rule runs it on {fn['schedule']}", f"got {schedules}")
            problems = []
            for rule in (r for r, e in schedules.items() if e == fn["schedule"]):
                for target in events.list_targets_by_rule(Rule=rule)["Targets"]:
                    if target["Arn"] != config["FunctionArn"]:
                        continue
                    dlq = target.get("DeadLetterConfig", {}).get("Arn")
                    retries = target.get("RetryPolicy", {}).get("MaximumRetryAttempts")
                    if dlq not in exact_arns or not retries:
                        problems.append(f"{rule}: dead-letter queue {dlq}, retries {retries}")
            report.check(bool(schedules) and not problems, subject, "its schedule retries, then a dead-letter queue (README)", "; ".join(problems))
        # Routed functions: API Gateway may invoke them (the routes themselves are stand-ins).
        if fn["routes"]:
            try:
                policy = json.loads(lam.get_policy(FunctionName=fn["name"])["Policy"])
                principals = {json.dumps(s.get("Principal")) for s in policy["Statement"]}
                ok = any("apigateway.amazonaws.com" in p for p in principals)
            except Exception as e:
                ok, principals = False, {str(e).splitlines()[0][:100]}
            report.check(ok, subject, "API Gateway may invoke it", f"got {sorted(principals)}")


def check_artefact(report: Report, subject: str, data: bytes) -> None:
    """A function zip holds an aarch64 Linux `bootstrap`; the placeholder is said to be one."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        report.check(False, subject, "code is a zip")
        return
    names = archive.namelist()
    if "bootstrap" not in names:
        if names == ["README.md"] and b"placeholder" in archive.read("README.md").lower():
            report.note(subject, "code is infra/placeholder (not deployable)", "synthesized with -c placeholderArtifacts=true")
        else:
            report.check(False, subject, "zip holds bootstrap", f"holds {names[:5]}")
        return
    head = archive.read("bootstrap")[:20]
    machine = int.from_bytes(head[18:20], "little") if len(head) >= 20 else -1
    info = archive.getinfo("bootstrap")
    executable = (info.external_attr >> 16) & 0o111
    ok = head[:4] == b"\x7fELF" and head[4] == 2 and machine == 183 and bool(executable)
    report.check(ok, subject, "bootstrap: executable ELF64 aarch64", f"ELF {head[:4]!r}, class {head[4:5]!r}, machine {machine}, mode {oct(info.external_attr >> 16)}")


def check_helpdesk_and_logs(report: Report, d: Deployment, declaration: dict) -> None:
    iam, logs = d.c("iam"), d.c("logs")
    policies = {p["PolicyName"]: p for p in iam.list_policies(Scope="Local")["Policies"]}
    for logical, resource in d.template["Resources"].items():
        if resource["Type"] != "AWS::IAM::ManagedPolicy":
            continue
        name = resource["Properties"].get("ManagedPolicyName")
        subject = f"policy {name}"
        if not report.check(name in policies, subject, "exists (README: the helpdesk's policy)"):
            continue
        version = iam.get_policy_version(PolicyArn=policies[name]["Arn"], VersionId=policies[name]["DefaultVersionId"])
        document = version["PolicyVersion"]["Document"]
        if isinstance(document, str):
            document = json.loads(urllib.request.unquote(document))
        have = sorted(a for s in document["Statement"] for a in statement_actions(s))
        want = sorted(a for s in resource["Properties"]["PolicyDocument"]["Statement"] for a in statement_actions(s))
        report.check(have == want, subject, f"the template's {len(want)} actions", f"got {have}")
    for fn in declaration["functions"]:
        name = f"/aws/lambda/{fn['name']}"
        groups = [g for g in logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"] if g["logGroupName"] == name]
        ok = len(groups) == 1 and groups[0].get("retentionInDays") == 30
        report.check(ok, f"function {fn['name']}", "log group, a month's retention (README)", f"got {groups[:1]}")


def check_bucket_deployment(report: Report, d: Deployment, uploaded: dict, repo_static: Path) -> None:
    """The exposure configuration's source asset (its copier is a stand-in) holds static/'s .json files."""
    for logical, resource in d.template["Resources"].items():
        if resource["Type"] != "Custom::CDKBucketDeployment":
            continue
        keys = resource["Properties"].get("SourceObjectKeys", [])
        for key in keys:
            data = next((v for (region, _, k), v in uploaded.items() if region == d.region and k == key), None)
            if not report.check(data is not None, logical[:34], f"source asset {key[:12]} published"):
                continue
            names = sorted(zipfile.ZipFile(io.BytesIO(data)).namelist())
            expected = sorted(p.relative_to(repo_static).as_posix() for p in repo_static.rglob("*") if p.is_file() and not p.name.endswith(".md"))
            report.check(names == expected, logical[:34], f"source holds static/ without .md ({len(expected)} files)", f"got {names[:6]}")
            if not expected:
                report.note(logical[:34], "static/ holds no .json yet", "nothing for the exposure configuration to copy")


# -- Coverage: what the emulator created, and what it did not -----------------------------------


def function_of(permission: dict) -> str:
    """The logical id (or literal name) of the function a Lambda::Permission is for."""
    target = permission["Properties"]["FunctionName"]
    return next(iter(references(target)), None) or str(target)


def coverage(
    report: Report, aws: Aws, server: MotoServer, stack: str, region: str, template: dict, listed: list[dict], parameters: dict
) -> tuple[Counter, Counter]:
    supported, _ = server.emulator_record()
    listed_by_id = {r["LogicalResourceId"]: r for r in listed}
    created, not_created = Counter(), Counter()
    failed = []
    lam = aws.client("lambda", region)
    for logical, resource in template["Resources"].items():
        kind = resource["Type"]
        entry = listed_by_id.get(logical)
        physical = (entry or {}).get("PhysicalResourceId") or ""
        is_stand_in = STANDIN in physical
        if kind in supported and not kind.startswith("Custom::"):
            no_physical_id = kind in ("AWS::Lambda::Permission",)  # moto gives none; probed instead
            if entry is None and "Condition" in resource:
                report.note(stack, f"{logical}: conditional, not created", resource["Condition"])
                continue
            if entry is None or is_stand_in or (not physical and not no_physical_id):
                failed.append(f"{logical} ({kind}): not created")
                continue
            resolved = dict(resource)
            if kind == "AWS::Lambda::Permission":
                function = function_of(resource)
                principal = resource["Properties"]["Principal"]
                wanted = sum(1 for r in template["Resources"].values() if r["Type"] == kind and function_of(r) == function and r["Properties"]["Principal"] == principal)
                resolved["_permission"] = (listed_by_id.get(function, {}).get("PhysicalResourceId", function), principal, wanted)
            if kind == "AWS::IAM::Policy":
                resolved["_resolved_roles"] = [
                    listed_by_id.get(next(iter(references(r)), ""), {}).get("PhysicalResourceId", str(r)) for r in resource["Properties"].get("Roles", [])
                ]
            why = probe(aws, region, kind, physical, resolved)
            if why not in (None, "skip"):
                failed.append(f"{logical} ({kind}): listed as {physical} but {why}")
                continue
            created[kind] += 1
        else:
            not_created[kind] += 1
    report.check(not failed, stack, f"every resource of a type moto supports is there ({sum(created.values())})", "; ".join(failed)[:600])
    return created, not_created


# -- main ----------------------------------------------------------------------------------------


def rehearse(args) -> int:
    cdk_out = Path(args.cdk_out).resolve()
    declaration = json.loads(Path(args.declaration).read_text())
    stacks, asset_manifests = stack_artifacts(cdk_out)
    missing = [s for s in STACK_ORDER if s not in stacks]
    if missing:
        raise Failure(f"{cdk_out}: no stack {missing} (synthesize first, see infra/README.md)")
    order = STACK_ORDER + sorted(set(stacks) - set(STACK_ORDER))
    templates = {name: json.loads((cdk_out / stacks[name]["templateFile"]).read_text()) for name in order}
    readme_names = readme_parameters(Path(args.readme))

    report = Report()
    started = time.monotonic()
    print(f"rehearse-deploy: moto{' (stock)' if args.stock else ''} on loopback, templates from {cdk_out}")
    try:
        server = MotoServer(args.stock)
    except Failure as e:
        print(f"rehearse-deploy: FAILED: {e}", file=sys.stderr)
        return 1
    summary_lines: list[str] = []
    try:
        aws = Aws(server.url)
        ssm_path = stacks["Cocoa"].get("bootstrapStackVersionSsmParameter", "/cdk-bootstrap/hnb659fds/version")
        qualifier = ssm_path.split("/")[2]
        required = max(int(s.get("requiresBootstrapStackVersion", 0)) for s in stacks.values())
        regions = sorted({s["region"] for s in stacks.values()})
        print(f"rehearse-deploy: cdk bootstrap ({', '.join(regions)}), qualifier {qualifier}")
        bootstrap(aws, server, report, regions, qualifier, required)
        # The roles `cdk deploy` and cdk-assets assume (moto's AssumeRole does not look them up).
        roles = set()
        for info in stacks.values():
            for role in (info.get("assumeRoleArn"), info.get("cloudFormationExecutionRoleArn"), info.get("lookupRole", {}).get("arn")):
                if role:
                    roles.add((info["region"], substitute(role, info["region"])))
        for artifact in asset_manifests.values():
            for asset in json.loads((cdk_out / artifact["file"]).read_text()).get("files", {}).values():
                for destination in asset["destinations"].values():
                    if "assumeRoleArn" in destination:
                        roles.add((destination["region"], substitute(destination["assumeRoleArn"], destination["region"])))
        for region, arn in sorted(roles):
            role_name = arn.rsplit("/", 1)[-1]
            try:
                aws.client("iam", region).get_role(RoleName=role_name)
                report.check(True, f"CDKToolkit {region}", f"role {role_name}")
            except Exception as e:
                report.check(False, f"CDKToolkit {region}", f"role {role_name}", str(e).splitlines()[0][:120])
        print("rehearse-deploy: publishing file assets")
        uploaded = publish_assets(aws, report, cdk_out, asset_manifests)

        totals_created, totals_not = Counter(), Counter()
        edge_acl_arn = None
        refused: list[str] = []
        for name in order:
            info, template = stacks[name], templates[name]
            region = info["region"]
            parameters = dummy_parameters(template, readme_names, edge_acl_arn) if name == "Cocoa" else {}
            check_parameters(report, name, template, parameters, readme_names)
            check_rules(aws, report, name, template, region, parameters)
            credentials = aws.assume(substitute(info["assumeRoleArn"], region), region) if "assumeRoleArn" in info else None
            url = substitute(info["stackTemplateAssetObjectUrl"], region)
            bucket, key = url[len("s3://") :].split("/", 1)
            print(f"rehearse-deploy: create-stack {name} ({region})")
            try:
                stack = create_stack(
                    aws, server, region, name, credentials,
                    TemplateURL=f"https://s3.{region}.amazonaws.com/{bucket}/{key}",
                    Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
                    RoleARN=substitute(info["cloudFormationExecutionRoleArn"], region),
                )
            except Failure as e:  # go on with the next stack: its errors are worth seeing too
                print(f"rehearse-deploy: {e}", file=sys.stderr)
                lines = str(e).splitlines()
                cause = next((line for line in lines if line.startswith("moto: ")), None)
                cause = cause or next((line for line in lines if line.startswith("CreateStack ")), lines[-1])
                report.check(False, name, "CREATE_COMPLETE", cause)
                refused.append(name)
                continue
            cf = aws.client("cloudformation", region)
            report.check(stack["StackStatus"] == "CREATE_COMPLETE", name, "CREATE_COMPLETE", stack["StackStatus"])
            outputs = {o["OutputKey"]: o.get("OutputValue") for o in stack.get("Outputs") or []}
            report.check(set(outputs) == set(template.get("Outputs", {})), name, f"outputs {sorted(template.get('Outputs', {}))}", f"got {sorted(outputs)}")
            listed = stack_resources(cf, name)
            created, not_created = coverage(report, aws, server, name, region, template, listed, parameters)
            totals_created += created
            totals_not += not_created
            if name == "CocoaEdge":
                arn = outputs.get("ApiWebAclArn")
                if arn and STANDIN not in arn:
                    edge_acl_arn = arn
                else:
                    report.note(name, "ApiWebAclArn output is a stand-in's", "Cocoa gets a well-formed placeholder ARN instead")
            if name == "Cocoa":
                d = Deployment(aws, region, template, listed, parameters)
                functions = {}
                for fn in declaration["functions"]:
                    try:
                        functions[fn["name"]] = d.c("lambda").get_function(FunctionName=fn["name"])["Configuration"]
                    except Exception:
                        pass
                names = {
                    "table": check_tables(report, d, declaration),
                    "kms": check_keys(report, d, declaration),
                }
                names["bucket"] = check_buckets(report, d, declaration, functions)
                check_functions(report, d, declaration, uploaded, names, parameters)
                check_helpdesk_and_logs(report, d, declaration)
                check_bucket_deployment(report, d, uploaded, REPO / "static")

        report.print_table()
        describe = lambda counter: ", ".join(f"{t} ({n})" for t, n in sorted(counter.items())) or "none"  # noqa: E731
        summary_lines = [
            f"created: {sum(totals_created.values())} resources of types {describe(totals_created)}",
            f"not created by the emulator: {sum(totals_not.values())} resources of types {describe(totals_not)}",
        ]
        if refused:
            summary_lines.append(f"refused by the emulator: {', '.join(refused)} (errors above)")
        if not args.stock:
            summary_lines.append("emulator additions: stand-ins for the types not created; " + "; ".join(FIDELITY))
    except Failure as e:
        report.print_table()
        print(f"\nrehearse-deploy: FAILED: {e}", file=sys.stderr)
        return 1
    except Exception:
        report.print_table()
        traceback.print_exc()
        print(f"\nrehearse-deploy: FAILED: the rehearsal itself broke (above); moto's log: {server.log_path}", file=sys.stderr)
        return 1
    finally:
        server.stop()

    failed = report.failed
    notes = [r for r in report.rows if r[0] == "note"]
    if not failed:
        for leftover in server.dir.iterdir():
            leftover.unlink()
        server.dir.rmdir()
    else:
        print(f"rehearse-deploy: moto's log and record kept in {server.dir}", file=sys.stderr)
    print("\nrehearse-deploy summary")
    for line in summary_lines:
        print(f"  {line}")
    print(f"  checks: {len(report.rows) - len(failed) - len(notes)} passed, {len(failed)} failed, {len(notes)} notes ({time.monotonic() - started:.0f} s)")
    for status, subject, what, detail in failed:
        print(f"  FAIL {subject}: {what}: {detail}")
    print("  what checks the rest: infra/README.md, 'Deploy rehearsal'")
    return 1 if failed else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cdk-out", default=str(REPO / "infra" / "cdk.out"), help="the synthesized cloud assembly")
    parser.add_argument("--declaration", default=str(REPO / "infra" / "stack.json"))
    parser.add_argument("--readme", default=str(REPO / "infra" / "README.md"))
    parser.add_argument("--stock", action="store_true", help="moto without the rehearsal's stand-ins and additions")
    parser.add_argument("--serve", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--record", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve("127.0.0.1", args.serve, args.stock, Path(args.record))
        return 0

    def stop(signum, frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
    return rehearse(args)


if __name__ == "__main__":
    sys.exit(main())
