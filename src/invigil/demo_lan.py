"""``invigil demo --lan``: the demo on this machine's LAN address over HTTPS, for a real phone.

Camera pages need a secure context, and a phone reaches the laptop only by its LAN address, not
127.0.0.1; so the demo serves HTTPS there with a self-signed certificate made for that address.
The phone's browser warns about it once; the SHA-256 fingerprint printed beside the URL is what
the candidate compares before accepting. The certificate and key stay in the demo's folder and
are reused while they fit the address.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

VALID_DAYS = 30


@dataclass(frozen=True)
class LanCert:
    cert_file: Path
    key_file: Path
    fingerprint: str  # SHA-256, colon-separated hex as browsers show it


def lan_address() -> str:
    """The address other machines on the network reach this one by: the source address of the
    default route (a UDP 'connect' sends no packet)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # TEST-NET-1: never contacted
            address = str(s.getsockname()[0])
        except OSError:
            address = ""
    if not address or address.startswith("127.") or address == "0.0.0.0":
        raise OSError(
            "找不到本机的局域网地址（请连接 Wi-Fi 或网线，或用 --lan-ip 指定）。"
            "No LAN address found: connect to a network or give --lan-ip."
        )
    return address


def fingerprint(cert: x509.Certificate) -> str:
    return ":".join(f"{b:02X}" for b in cert.fingerprint(hashes.SHA256()))


def _fits(cert: x509.Certificate, address: str, now: datetime) -> bool:
    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    ips = {str(ip) for ip in names.get_values_for_type(x509.IPAddress)}
    return address in ips and cert.not_valid_after_utc - now > timedelta(days=1)


def certificate(folder: Path, address: str) -> LanCert:
    """The demo's certificate for ``address``: reused when it still fits, else made anew."""
    folder.mkdir(parents=True, exist_ok=True)
    cert_file, key_file = folder / "demo-cert.pem", folder / "demo-key.pem"
    now = datetime.now(UTC)
    if cert_file.is_file() and key_file.is_file():
        try:
            cert = x509.load_pem_x509_certificate(cert_file.read_bytes())
            if _fits(cert, address, now):
                return LanCert(cert_file, key_file, fingerprint(cert))
        except ValueError:
            pass  # unreadable: replaced below
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, f"invigil demo {address}"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "invigil demo (self-signed)"),
        ]
    )
    sans: list[x509.GeneralName] = [
        x509.IPAddress(ipaddress.ip_address(address)),
        x509.DNSName("localhost"),
    ]
    if address != "127.0.0.1":
        sans.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=VALID_DAYS))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_file.chmod(0o600)
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return LanCert(cert_file, key_file, fingerprint(cert))


def instructions(base_url: str, cert: LanCert) -> list[str]:
    """What to do on the phone (and the laptop) to accept the self-signed certificate."""
    return [
        "",
        "  局域网 HTTPS（自签名证书） LAN HTTPS with a self-signed certificate:",
        f"    手机和电脑连同一个网络（Wi-Fi），电脑上也用这个地址打开考生端：{base_url}",
        "    首次打开时浏览器会提示“您的连接不是私密连接 / 证书无效”：先核对证书的",
        "    SHA-256 指纹与下面一致，再点“高级” → “继续前往（不安全）”；手机和电脑各接受一次。",
        "    The browser warns that the certificate is not trusted: check that its SHA-256",
        "    fingerprint matches this one, then choose Advanced → Proceed (on phone and laptop).",
        f"    SHA-256 指纹 fingerprint: {cert.fingerprint}",
        f"    证书文件 certificate: {cert.cert_file}",
    ]
