#!/usr/bin/env python3
"""A stand-in for HER-SYS's processing-number check, for local runs and tests only.

It speaks the configurable contract COCOA's server used (reference/cocoa-api.md §4): a POST whose
body is `{"<parameter>": "<number>"}`, answered with `{"result": "<code>"}`. Fixed test numbers:

    99999910  valid                      -> {"result": RESULT_VALID}
    99999920  wrong or expired           -> {"result": RESULT_INVALID}
    99999930  HER-SYS fails              -> HTTP 500
    99999940  HER-SYS is slow            -> waits SLOW_SECONDS, then answers valid
    99999950  HER-SYS is down            -> closes the connection without answering
    anything else                        -> {"result": RESULT_INVALID}

`GET /stats` answers `{"requests": N}`, the number of checks received so far, so tests can prove
what never reached HER-SYS. It keeps no number, and never logs a request line or a body.

Settings (environment): HERSYS_PORT (8090), HERSYS_PARAMETER_NAME (processingNumber),
HERSYS_API_KEY (when set, the header Ocp-Apim-Subscription-Key must carry it, else 401),
HERSYS_RESULT_VALID (VALID), HERSYS_RESULT_INVALID (INVALID_OR_EXPIRED), HERSYS_SLOW_SECONDS (6).
Mutual TLS, as a HER-SYS that asks for COCOA's client certificate: HERSYS_TLS_CERT and
HERSYS_TLS_KEY (the server's PEM files) and HERSYS_TLS_CLIENT_CA (PEM of the CA client
certificates must chain to; a client without one is refused during the handshake).
"""
import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PARAMETER = os.environ.get("HERSYS_PARAMETER_NAME", "processingNumber")
API_KEY = os.environ.get("HERSYS_API_KEY", "")
RESULT_VALID = os.environ.get("HERSYS_RESULT_VALID", "VALID")
RESULT_INVALID = os.environ.get("HERSYS_RESULT_INVALID", "INVALID_OR_EXPIRED")
SLOW_SECONDS = float(os.environ.get("HERSYS_SLOW_SECONDS", "6"))

received = 0
received_lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # noqa: A002 - silence the default access log
        pass

    def _answer(self, status: int, payload: dict | None) -> None:
        body = json.dumps(payload).encode() if payload is not None else b""
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):  # health check for the launcher, and the request count for tests
        if self.path == "/stats":
            with received_lock:
                return self._answer(200, {"requests": received})
        self._answer(200, {"status": "ok"})

    def do_POST(self):
        global received
        with received_lock:
            received += 1
        if API_KEY and self.headers.get("Ocp-Apim-Subscription-Key") != API_KEY:
            return self._answer(401, {"error": "missing or wrong subscription key"})
        length = int(self.headers.get("Content-Length") or 0)
        try:
            number = json.loads(self.rfile.read(length)).get(PARAMETER)
        except (ValueError, AttributeError):
            return self._answer(400, {"error": "body must be a JSON object"})
        if number == "99999930":
            return self._answer(500, {"error": "internal error"})
        if number == "99999950":
            self.close_connection = True
            self.connection.close()
            return None
        if number == "99999940":
            time.sleep(SLOW_SECONDS)
            return self._answer(200, {"result": RESULT_VALID})
        result = RESULT_VALID if number == "99999910" else RESULT_INVALID
        return self._answer(200, {"result": result})


class Server(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        pass  # a client that gave up (timeout tests) is expected; never print its address


if __name__ == "__main__":
    port = int(os.environ.get("HERSYS_PORT", "8090"))
    server = Server(("127.0.0.1", port), Handler)
    if os.environ.get("HERSYS_TLS_CERT"):
        import ssl

        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(os.environ["HERSYS_TLS_CERT"], os.environ["HERSYS_TLS_KEY"])
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(os.environ["HERSYS_TLS_CLIENT_CA"])
        server.socket = context.wrap_socket(server.socket, server_side=True)
    server.serve_forever()
