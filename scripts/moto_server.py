#!/usr/bin/env python3
"""Start moto's server with KMS `Sign`/`Verify` honouring `MessageType=DIGEST`.

moto 5.x ignores MessageType and always hashes the message it is given, so a signature over a
SHA-256 digest comes back as a signature over SHA-256(digest): openssl rejects it against the
original message, while moto's own Verify happily agrees with itself. Real KMS signs the digest as
given. The product signs digests (that is what production must do), so we fix the emulator here,
not the product: with MessageType=DIGEST the digest is signed as pre-hashed, exactly as KMS does.

Usage: moto_server.py [moto_server arguments, e.g. -H 127.0.0.1 -p 5000]
"""
import sys
import threading

from cryptography.hazmat.primitives.asymmetric import ec, utils as asym_utils
from moto.kms import responses as kms_responses
from moto.kms import utils as kms_utils
from moto.kms.exceptions import ValidationException

_request = threading.local()


def _digest_mode() -> bool:
    return getattr(_request, "digest", False)


def _with_message_type(original):
    def wrapper(self):
        _request.digest = self._get_param("MessageType") == "DIGEST"
        try:
            return original(self)
        finally:
            _request.digest = False

    return wrapper


def _prehashed(message: bytes, hash_algorithm):
    if len(message) != hash_algorithm.digest_size:
        raise ValidationException(
            f"Digest is invalid length for algorithm {hash_algorithm.name.upper()}."
        )
    return asym_utils.Prehashed(hash_algorithm)


def _patch_ecdsa():
    cls = kms_utils.ECDSAPrivateKey
    original_sign, original_verify = cls.sign, cls.verify

    def sign(self, message, signing_algorithm):
        if not _digest_mode():
            return original_sign(self, message, signing_algorithm)
        kms_utils.validate_signing_algorithm(signing_algorithm, self.valid_signing_algorithms)
        algorithm = self._ECDSAPrivateKey__hash_algorithm(signing_algorithm)
        return self.private_key.sign(message, ec.ECDSA(_prehashed(message, algorithm)))

    def verify(self, message, signature, signing_algorithm):
        if not _digest_mode():
            return original_verify(self, message, signature, signing_algorithm)
        kms_utils.validate_signing_algorithm(signing_algorithm, self.valid_signing_algorithms)
        algorithm = self._ECDSAPrivateKey__hash_algorithm(signing_algorithm)
        try:
            self.private_key.public_key().verify(
                signature, message, ec.ECDSA(_prehashed(message, algorithm))
            )
            return True
        except Exception:  # cryptography raises InvalidSignature
            return False

    cls.sign, cls.verify = sign, verify


def _patch_rsa():
    cls = kms_utils.RSAPrivateKey
    original_sign, original_verify = cls.sign, cls.verify

    def sign(self, message, signing_algorithm):
        if not _digest_mode():
            return original_sign(self, message, signing_algorithm)
        pad, algorithm = self._RSAPrivateKey__padding_and_hash_algorithm(signing_algorithm)
        return self.private_key.sign(message, pad, _prehashed(message, algorithm))

    def verify(self, message, signature, signing_algorithm):
        if not _digest_mode():
            return original_verify(self, message, signature, signing_algorithm)
        pad, algorithm = self._RSAPrivateKey__padding_and_hash_algorithm(signing_algorithm)
        try:
            self.private_key.public_key().verify(
                signature, message, pad, _prehashed(message, algorithm)
            )
            return True
        except Exception:
            return False

    cls.sign, cls.verify = sign, verify


def install() -> None:
    kms_responses.KmsResponse.sign = _with_message_type(kms_responses.KmsResponse.sign)
    kms_responses.KmsResponse.verify = _with_message_type(kms_responses.KmsResponse.verify)
    _patch_ecdsa()
    _patch_rsa()


if __name__ == "__main__":
    install()
    from moto.server import main

    main(sys.argv[1:])
