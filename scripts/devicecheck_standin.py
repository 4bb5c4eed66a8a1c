#!/usr/bin/env python3
"""PLACEHOLDER stand-in for Apple's DeviceCheck `validate_device_token` (replaced by the attestation work)."""
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Handler(BaseHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002
        pass

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()


if __name__ == "__main__":
    ThreadingHTTPServer(("127.0.0.1", int(os.environ.get("DEVICECHECK_PORT", "8091"))), Handler).serve_forever()
