"""A fault-injecting proxy in front of one local AWS emulator (DynamoDB Local, or moto for KMS),
for the fault tests (tests/src/services.rs starts it): every request is passed on unchanged,
except those a rule matches, which get the error AWS itself answers, as AWS sends it (status, the
`__type` JSON body, `x-amzn-ErrorType`), so the SDK's own retry logic and the adapters' error
mapping see exactly what they would see in production.

    python3 scripts/aws_fault_proxy.py --port P --upstream http://127.0.0.1:8000

Control (on the same port, paths no AWS API uses):
    PUT    /__faults    a JSON list of rules, replacing the current ones:
                        {"target": "DynamoDB_20120810.PutItem", "table": "cocoa-exposure-keys",
                         "error": "ProvisionedThroughputExceededException", "count": 2}
                        `target` is the X-Amz-Target header (DynamoDB_20120810.*, TrentService.*);
                        `table` (optional) the request's TableName, or any table of a
                        BatchWriteItem/TransactWriteItems; `count` how many matching requests fail
                        (-1: all of them); `share` (optional, 0..1) the share of matches that fail,
                        at random, instead; `after` (optional, true) passes the request on
                        first and then answers the error instead of the emulator's answer: the
                        write happened, its answer was lost; `skip` (optional) how many
                        matching requests pass before the rule applies.
    GET    /__faults    {"forwarded": n, "failed": {error: n}}
    DELETE /__faults    no rules
"""

import argparse
import http.client
import http.server
import json
import random
import sys
import threading
import urllib.parse

# What AWS answers for each error a rule can inject: (status, __type).
ERRORS = {
    "ProvisionedThroughputExceededException": (
        400, "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException"),
    "ThrottlingException": (400, "com.amazonaws.dynamodb.v20120810#ThrottlingException"),
    "RequestLimitExceeded": (400, "com.amazonaws.dynamodb.v20120810#RequestLimitExceeded"),
    "InternalServerError": (500, "com.amazonaws.dynamodb.v20120810#InternalServerError"),
    "KMSThrottlingException": (400, "ThrottlingException"),
}
MESSAGES = {
    "ProvisionedThroughputExceededException": "The level of configured provisioned throughput for the table was exceeded. Consider increasing your provisioning level with the UpdateTable API.",
    "ThrottlingException": "Rate of requests exceeds the allowed throughput.",
    "RequestLimitExceeded": "Throughput exceeds the current throughput limit for your account. Please contact AWS Support at https://aws.amazon.com/support request a limit increase",
    "InternalServerError": "Internal server error",
    "KMSThrottlingException": "Rate exceeded",
}


class State:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.rules: list[dict] = []
        self.forwarded = 0
        self.failed: dict[str, int] = {}

    def fault_for(self, target: str, body: bytes) -> tuple[str, bool] | None:
        tables = tables_of(body)
        with self.lock:
            for rule in self.rules:
                if rule.get("target") != target:
                    continue
                if rule.get("table") and rule["table"] not in tables:
                    continue
                if rule.get("skip", 0) > 0:
                    rule["skip"] -= 1
                    continue
                if "share" in rule:
                    if random.random() >= float(rule["share"]):
                        continue
                elif rule.get("count", -1) == 0:
                    continue
                elif rule.get("count", -1) > 0:
                    rule["count"] -= 1
                error = rule["error"]
                self.failed[error] = self.failed.get(error, 0) + 1
                return error, bool(rule.get("after"))
            self.forwarded += 1
        return None


def tables_of(body: bytes) -> set[str]:
    try:
        request = json.loads(body or b"{}")
    except ValueError:
        return set()
    tables = set()
    if isinstance(request.get("TableName"), str):
        tables.add(request["TableName"])
    for name in (request.get("RequestItems") or {}):
        tables.add(name)
    for item in request.get("TransactItems") or []:
        for action in item.values():
            if isinstance(action, dict) and isinstance(action.get("TableName"), str):
                tables.add(action["TableName"])
    return tables


def handler(state: State, upstream: urllib.parse.SplitResult):
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_args) -> None:  # the test's log holds only faults
            pass

        def reply(self, status: int, body: bytes, headers: list[tuple[str, str]]) -> None:
            self.send_response(status)
            for name, value in headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def control(self, body: bytes) -> None:
            if self.command == "PUT":
                rules = json.loads(body or b"[]")
                with state.lock:
                    state.rules = rules
            elif self.command == "DELETE":
                with state.lock:
                    state.rules = []
            with state.lock:
                answer = {"forwarded": state.forwarded, "failed": dict(state.failed)}
            self.reply(200, json.dumps(answer).encode(), [("Content-Type", "application/json")])

        def handle_any(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            if self.path.startswith("/__faults"):
                self.control(body)
                return
            target = self.headers.get("X-Amz-Target", "")
            fault = state.fault_for(target, body)
            if fault is not None and not fault[1]:
                self.fail(target, fault[0])
                return
            connection = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=60)
            try:
                headers = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
                connection.request(self.command, self.path, body=body, headers=headers)
                response = connection.getresponse()
                data = response.read()
                if fault is not None:
                    self.fail(target, fault[0], f"after the emulator answered {response.status}")
                    return
                passed = [(k, v) for k, v in response.getheaders()
                          if k.lower() not in ("content-length", "transfer-encoding", "connection")]
                self.reply(response.status, data, passed)
            except OSError as error:
                self.reply(502, str(error).encode(), [("Content-Type", "text/plain")])
            finally:
                connection.close()

        def fail(self, target: str, error: str, when: str = "") -> None:
            status, kind = ERRORS[error]
            payload = json.dumps({"__type": kind, "message": MESSAGES[error]}).encode()
            print(f"fault: {target} -> {status} {error} {when}".rstrip(), file=sys.stderr, flush=True)
            self.reply(status, payload, [
                ("Content-Type", "application/x-amz-json-1.0"),
                ("x-amzn-ErrorType", kind.split("#")[-1]),
                ("x-amzn-RequestId", "fault-proxy"),
            ])

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = handle_any

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True)
    args = parser.parse_args()
    state = State()
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", args.port), handler(state, urllib.parse.urlsplit(args.upstream)))
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
