"""HTTPS for real (issue 16): `loanrisk serve --ssl-certfile/--ssl-keyfile` on uvicorn, with a
certificate the test signs with its own CA; httpx verifies the chain and the host name."""

from __future__ import annotations

import ipaddress
import ssl
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "api"))
from model_factory import GOOD, build_model_dir  # noqa: E402
from service_proc import LOANRISK, free_port, new_key, service_env  # noqa: E402


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_pki(where: Path, *, days: int = 30) -> tuple[Path, Path, Path]:
    """A CA, and a server certificate for 127.0.0.1/localhost signed by it: (ca, cert, key)."""
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (x509.CertificateBuilder().subject_name(_name("loanrisk test CA"))
          .issuer_name(_name("loanrisk test CA")).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(hours=1))
          .not_valid_after(now + timedelta(days=365))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder().subject_name(_name("127.0.0.1")).issuer_name(ca.subject)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(hours=1)).not_valid_after(now + timedelta(days=days))
            .add_extension(x509.SubjectAlternativeName([
                x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]),
                critical=False)
            .sign(ca_key, hashes.SHA256()))
    paths = where / "ca.pem", where / "cert.pem", where / "key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return paths


def test_https_end_to_end_verified_against_the_test_ca(tmp_path: Path) -> None:
    ca, cert, key = make_pki(tmp_path)
    env = service_env(tmp_path / "home")
    token = new_key(env, "--channel", "web")
    model = build_model_dir(tmp_path / "m")
    port = free_port()
    proc = subprocess.Popen([LOANRISK, "serve", "--port", str(port), "--model-dir", str(model),
                             "--ssl-certfile", str(cert), "--ssl-keyfile", str(key)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    trust = ssl.create_default_context(cafile=str(ca))
    url = f"https://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(url + "/ready", verify=trust, timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "service did not start"
            time.sleep(0.2)
        with httpx.Client(base_url=url, verify=trust, timeout=10) as c:
            r = c.post("/v1/applications", json=GOOD,
                       headers={"Authorization": f"Bearer {token}"})
            assert r.status_code == 201, r.text
            assert c.get(f"/v1/applications/{r.json()['id']}",
                         headers={"Authorization": f"Bearer {token}"}).status_code == 200
        with pytest.raises(httpx.ConnectError):  # not trusted without the test's CA
            httpx.get(url + "/health", timeout=5)
        with pytest.raises(httpx.TransportError):  # plain HTTP on the TLS port: no answer
            httpx.get(f"http://127.0.0.1:{port}/health", timeout=5)
    finally:
        proc.terminate()
        out = proc.communicate(timeout=30)[0]
    assert f"on https://127.0.0.1:{port}" in out, out


def test_doctor_checks_the_certificate(tmp_path: Path) -> None:
    from loanrisk.cli.security_checks import check_certificate

    _, cert, key = make_pki(tmp_path, days=10)
    checks = {c.name: c for c in check_certificate(cert, key)}
    assert checks["TLS certificate"].ok and checks["TLS key"].ok
    assert not checks["TLS certificate expiry"].ok  # 10 days left: a warning
    assert not checks["TLS certificate expiry"].required
    later = datetime.now(UTC) + timedelta(days=11)
    [expired] = check_certificate(cert, now=later)
    assert not expired.ok and expired.required and "expired" in expired.detail
    (tmp_path / "other").mkdir()
    _, other_cert, _ = make_pki(tmp_path / "other")
    wrong = {c.name: c for c in check_certificate(other_cert, key)}
    assert not wrong["TLS key"].ok


def test_serve_refuses_half_a_pair_or_a_bad_file(tmp_path: Path) -> None:
    env = service_env(tmp_path / "home")
    model = build_model_dir(tmp_path / "m")
    bad = tmp_path / "bad.pem"
    bad.write_text("not a certificate")
    for extra in (["--ssl-certfile", str(bad)],
                  ["--ssl-certfile", str(bad), "--ssl-keyfile", str(bad)]):
        res = subprocess.run([LOANRISK, "serve", "--model-dir", str(model), *extra], env=env,
                             capture_output=True, text=True, timeout=60)
        assert res.returncode == 2 and "ssl" in res.stderr and "Traceback" not in res.stderr, \
            res.stderr
