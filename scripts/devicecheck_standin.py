#!/usr/bin/env python3
"""A stand-in for Apple DeviceCheck's `validate_device_token`, for local runs and tests only.

It speaks the contract COCOA's server used (reference/cocoa-api.md §5.3):

    POST /v1/validate_device_token
    Authorization: Bearer <ES256 JWT: header {"alg":"ES256","kid":...}, claims {"iss":...,"iat":...}>
    {"device_token": "...", "transaction_id": "...", "timestamp": <unix ms>}

and answers like Apple:

    401  the bearer JWT is missing or malformed (or, when DEVICECHECK_PUBLIC_KEY_PEM is set,
         its signature does not verify with that key)
    400  the body lacks device_token, transaction_id or timestamp
    200  device_token starts with VALID-DEVICE; a token VALID-DEVICE:<id> is valid only when the
         request's transaction_id is exactly <id> (so a test can check the id a client computed)
    400  any other device token: "Missing or incorrectly formatted device token payload"

GET / answers 200 (the launcher's health check). Settings (environment): DEVICECHECK_PORT (8091),
DEVICECHECK_PUBLIC_KEY_PEM (optional PEM of the P-256 public key the JWT must be signed with).
It listens on 127.0.0.1 only, and never logs a request line or a body: device tokens are
private even here.
"""
import base64
import binascii
import json
import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PATH = "/v1/validate_device_token"
VALID_PREFIX = "VALID-DEVICE"
INVALID_TOKEN = "Missing or incorrectly formatted device token payload"
PUBLIC_KEY_PEM = os.environ.get("DEVICECHECK_PUBLIC_KEY_PEM", "").strip()


def b64url(text: str) -> bytes:
    """Decodes base64url with or without padding; raises ValueError."""
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as error:
        raise ValueError("not base64url") from error


def load_public_key():
    """The configured public key, or None. Imported lazily: only this check needs `cryptography`."""
    if not PUBLIC_KEY_PEM:
        return None
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    return load_pem_public_key(PUBLIC_KEY_PEM.encode())


PUBLIC_KEY = load_public_key()


def signature_verifies(signed: bytes, signature: bytes) -> bool:
    """Checks a JWS ES256 signature (raw r || s) with the configured key."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

    r = int.from_bytes(signature[:32], "big")
    s = int.from_bytes(signature[32:], "big")
    try:
        PUBLIC_KEY.verify(encode_dss_signature(r, s), signed, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        return False
    return True


def bearer_is_valid(authorization: str | None) -> bool:
    """A well-formed ES256 JWT with kid, iss and iat (and a good signature, if a key is set)."""
    if not authorization or not authorization.startswith("Bearer "):
        return False
    parts = authorization[len("Bearer "):].strip().split(".")
    if len(parts) != 3:
        return False
    try:
        header = json.loads(b64url(parts[0]))
        claims = json.loads(b64url(parts[1]))
        signature = b64url(parts[2])
    except ValueError:
        return False
    if not isinstance(header, dict) or not isinstance(claims, dict):
        return False
    if header.get("alg") != "ES256" or not isinstance(header.get("kid"), str) or not header["kid"]:
        return False
    if not isinstance(claims.get("iss"), str) or not claims["iss"]:
        return False
    iat = claims.get("iat")
    if not isinstance(iat, int) or isinstance(iat, bool):
        return False
    if len(signature) != 64:
        return False
    if PUBLIC_KEY is not None:
        return signature_verifies(f"{parts[0]}.{parts[1]}".encode(), signature)
    return True


def device_token_is_valid(device_token: str, transaction_id: str) -> bool:
    if not device_token.startswith(VALID_PREFIX):
        return False
    rest = device_token[len(VALID_PREFIX):]
    if rest.startswith(":"):
        return rest[1:] == transaction_id
    return True


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, format, *args):  # noqa: A002 - silence the default access log
        pass

    def _answer(self, status: int, text: str = "") -> None:
        body = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):  # health check for the launcher
        if self.path == "/":
            return self._answer(200, "ok")
        return self._answer(404)

    def do_POST(self):
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = 0
        raw = self.rfile.read(length) if length > 0 else b""
        if self.path != PATH:
            return self._answer(404)
        if not bearer_is_valid(self.headers.get("Authorization")):
            return self._answer(401, "Unable to verify authorization token")
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return self._answer(400, INVALID_TOKEN)
        device_token = body.get("device_token")
        transaction_id = body.get("transaction_id")
        timestamp = body.get("timestamp")
        if (
            not isinstance(device_token, str)
            or not isinstance(transaction_id, str)
            or not isinstance(timestamp, int)
            or isinstance(timestamp, bool)
        ):
            return self._answer(400, INVALID_TOKEN)
        if device_token_is_valid(device_token, transaction_id):
            return self._answer(200)
        return self._answer(400, INVALID_TOKEN)


if __name__ == "__main__":
    port = int(os.environ.get("DEVICECHECK_PORT", "8091"))
    ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
