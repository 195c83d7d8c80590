"""Keys made at the first `up` and kept under `.local/`: the token issuer's RS256 key with its
self-signed certificate, and a throwaway service-account key for V4 signed URLs."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID


def new_private_key_pem() -> bytes:
    """A fresh 2048-bit RSA key, PKCS#8 PEM."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def self_signed_certificate_pem(key_pem: bytes, common_name: str) -> bytes:
    """A ten-year self-signed X.509 certificate for the key (the shape Google's endpoint serves)."""
    key = serialization.load_pem_private_key(key_pem, password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    tmp.replace(path)


@dataclass(frozen=True)
class IssuerKey:
    """The issuer's signing key, its certificate and key id."""

    private_pem: bytes
    certificate_pem: bytes

    @property
    def kid(self) -> str:
        return hashlib.sha1(self.certificate_pem).hexdigest()  # noqa: S324 - an identifier


def issuer_key(folder: Path) -> IssuerKey:
    """Load the issuer key from `folder`, making it on first use."""
    key_file, cert_file = folder / "issuer-key.pem", folder / "issuer-cert.pem"
    if not (key_file.exists() and cert_file.exists()):
        pem = new_private_key_pem()
        _write_private(key_file, pem)
        cert_file.write_bytes(self_signed_certificate_pem(pem, "securetoken.local"))
    return IssuerKey(key_file.read_bytes(), cert_file.read_bytes())


def ensure_signing_credentials(path: Path, project: str) -> Path:
    """A service-account-shaped JSON key (fresh RSA key) for V4 signed URLs; made once."""
    if path.exists():
        return path
    pem = new_private_key_pem()
    email = f"local-signer@{project}.iam.gserviceaccount.com"
    info = {
        "type": "service_account",
        "project_id": project,
        "private_key_id": hashlib.sha1(pem).hexdigest(),  # noqa: S324 - an identifier
        "private_key": pem.decode(),
        "client_email": email,
        "client_id": str(int(hashlib.sha256(email.encode()).hexdigest()[:20], 16)),
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": "https://oauth2.googleapis.com/token",
        "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
        "client_x509_cert_url": f"https://www.googleapis.com/robot/v1/metadata/x509/{email}",
        "universe_domain": "googleapis.com",
    }
    _write_private(path, json.dumps(info, indent=2).encode())
    return path
