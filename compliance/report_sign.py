"""The bundle embedded in the report PDF, and the report signed for the instance (DESIGN §9).

The bundle becomes the attached file `caseledger-bundle.json` with relationship /Source, listed in
the catalog's /AF array (PDF/A-3 style), so the PDF carries its own proof. It is added as an
incremental update streamed from the bundle file, compressed chunk by chunk: a bundle of 100 MB is
never in memory. The signature is PAdES (ETSI EN 319 142, pyHanko), a certification signature that
permits no change, over the whole file; it too is appended as an incremental update, read and
written in chunks.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pikepdf
from asn1crypto import keys as asn1_keys
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.misc import PdfError as PyHankoPdfError
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields, signers
from pyhanko.sign.general import SigningError
from pyhanko_certvalidator.registry import SimpleCertificateStore

from compliance.errors import ReportError
from compliance.pdf_writer import ObjectWriter
from compliance.report_pdf import BUNDLE_NAME

__all__ = [
    "BundleAttachment",
    "InstanceSigner",
    "attach_bundle",
    "create_dev_certificate",
    "instance_signer",
    "sign_report",
]

_CHUNK = 1 << 20
SIGNATURE_FIELD = "caseledger-report"


@dataclass(frozen=True)
class BundleAttachment:
    """What was embedded: the bundle's SHA-256 (lowercase hex) and its size in bytes."""

    sha256: str
    size: int


def _chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            yield chunk


def _pdf_string(text: str) -> bytes:
    return bytes(pikepdf.String(text).unparse())


def _pdf_name(name: str) -> bytes:
    return bytes(pikepdf.Name(name).unparse())


def _syntax(obj: generic.PdfObject) -> bytes:
    """`obj` in PDF syntax, its references as numbered in its own file (an incremental update keeps them)."""
    out = io.BytesIO()
    obj.write_to_stream(out, None)
    return out.getvalue()


def _entries(d: generic.DictionaryObject, skip: tuple[str, ...]) -> bytes:
    return b"".join(_syntax(generic.NameObject(k)) + b" " + _syntax(d.raw_get(k)) + b" " for k in d if k not in skip)


@dataclass(frozen=True)
class _Catalog:
    """What an incremental update needs from the PDF it extends."""

    number: int
    generation: int
    entries: bytes  # the catalog's entries, less /Names and /AF
    names: bytes  # the /Names entries, less /EmbeddedFiles
    trailer: bytes  # /Root, /Info and /ID for the new trailer
    next_number: int
    prev: int


def _read_catalog(pdf_path: Path) -> _Catalog:
    """Read the catalog and trailer with pyHanko's reader, which resolves only what is asked for.

    Why not pikepdf here: qpdf sets up every object of the file on opening it, about 1.8 KB each,
    which for a report of 100,000 entries would be the largest allocation of the whole export.
    """
    with open(pdf_path, "rb") as f:
        reader = PdfFileReader(f, strict=False)
        root_ref = reader.trailer.raw_get("/Root")
        if not isinstance(root_ref, generic.IndirectObject):
            raise ReportError("the PDF's catalog is not an indirect object")
        root = reader.root
        names = root.get("/Names")
        if "/AF" in root or (isinstance(names, generic.DictionaryObject) and "/EmbeddedFiles" in names):
            raise ReportError("the PDF already carries attachments")
        if reader.last_startxref is None:
            raise ReportError("the PDF has no cross-reference section")
        trailer = b"/Root " + _syntax(root_ref)
        for key in ("/Info", "/ID"):
            if key in reader.trailer:
                trailer += b" " + _syntax(generic.NameObject(key)) + b" " + _syntax(reader.trailer.raw_get(key))
        return _Catalog(number=root_ref.idnum, generation=root_ref.generation,
                        entries=_entries(root, ("/Names", "/AF")),
                        names=_entries(names, ()) if isinstance(names, generic.DictionaryObject) else b"",
                        trailer=trailer,
                        next_number=int(reader.trailer["/Size"]), prev=reader.last_startxref)


def attach_bundle(pdf_path: Path, bundle_path: Path, out_path: Path, *,
                  now: datetime | None = None) -> BundleAttachment:
    """Write `pdf_path` with the bundle at `bundle_path` attached to `out_path`; neither file is loaded whole.

    The PDF must not carry attachments yet (a report is rendered fresh for each export).
    """
    sha, md5, size = hashlib.sha256(), hashlib.md5(usedforsecurity=False), 0
    for chunk in _chunks(bundle_path):
        sha.update(chunk)
        md5.update(chunk)
        size += len(chunk)
    mod_date = (now or datetime.now(UTC)).astimezone(UTC).strftime("D:%Y%m%d%H%M%SZ")
    try:
        cat = _read_catalog(pdf_path)
    except (PyHankoPdfError, ValueError, KeyError, TypeError) as exc:
        raise ReportError(f"cannot attach the bundle: the PDF is unreadable ({type(exc).__name__})") from exc
    shutil.copyfile(pdf_path, out_path)
    with open(out_path, "r+b") as out:
        out.seek(-1, os.SEEK_END)
        if out.read(1) not in (b"\n", b"\r"):
            out.write(b"\n")
        w = ObjectWriter(out, position=out.tell(), next_number=cat.next_number)
        data, spec = w.reserve(), w.reserve()
        params = b"<</Size %d /CheckSum <%s> /ModDate %s>>" % (size, md5.hexdigest().encode(), _pdf_string(mod_date))
        w.put_compressed_stream(data, b"/Type /EmbeddedFile /Subtype %s /DL %d /Params %s "
                                % (_pdf_name("/application/json"), size, params), _chunks(bundle_path))
        name = _pdf_string(BUNDLE_NAME)
        desc = _pdf_string("caseledger proof bundle (caseledger.bundle v1) of this report")
        w.put(spec, b"<</Type /Filespec /F %s /UF %s /AFRelationship /Source /Desc %s /EF <</F %d 0 R /UF %d 0 R>>>>"
              % (name, name, desc, data, data))
        catalog = b"<<%s/Names <<%s/EmbeddedFiles <</Names [%s %d 0 R]>>>> /AF [%d 0 R]>>" % (
            cat.entries, cat.names, name, spec, spec)
        w.put(cat.number, catalog, generation=cat.generation)
        w.finish(cat.trailer, prev=cat.prev)
    return BundleAttachment(sha256=sha.hexdigest(), size=size)


@dataclass(frozen=True)
class InstanceSigner:
    """The instance's signing key and certificate, ready for pyHanko."""

    certificate: x509.Certificate
    signer: signers.SimpleSigner


def instance_signer(key_path: Path, cert_path: Path) -> InstanceSigner:
    """Load the instance's PEM private key (unencrypted) and X.509 certificate."""
    try:
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except (OSError, ValueError, TypeError) as exc:
        raise ReportError(f"cannot load the report signing key or certificate: {type(exc).__name__}") from exc
    if cert.public_key() != key.public_key():
        raise ReportError("the report signing key does not belong to its certificate")
    der_key = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    asn1_cert = asn1_x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))
    registry = SimpleCertificateStore()  # type: ignore[no-untyped-call]  # unannotated in pyhanko-certvalidator
    registry.register(asn1_cert)
    signer = signers.SimpleSigner(signing_cert=asn1_cert, signing_key=asn1_keys.PrivateKeyInfo.load(der_key),
                                  cert_registry=registry)
    return InstanceSigner(certificate=cert, signer=signer)


def create_dev_certificate(instance: str, key_path: Path, cert_path: Path, *, now: datetime | None = None,
                           days: int = 825) -> x509.Certificate:
    """A new ECDSA P-256 key and self-signed certificate (CN ``caseledger <instance>``) for development and tests.

    The key is written with mode 0600; neither file may exist yet. Production instances use a
    certificate from their own CA instead.
    """
    now = (now or datetime.now(UTC)).astimezone(UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"caseledger {instance}")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=True, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                     crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    pem_key = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem_key)
    fd = os.open(cert_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    with os.fdopen(fd, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    return cert


def sign_report(pdf_path: Path, out_path: Path, signer: InstanceSigner, *, reason: str = "caseledger audit export",
                location: str | None = None) -> None:
    """Write `pdf_path` signed (PAdES, certifying, no changes permitted) to `out_path`, streaming file to file."""
    meta = signers.PdfSignatureMetadata(
        field_name=SIGNATURE_FIELD,
        md_algorithm="sha256",
        subfilter=fields.SigSeedSubFilter.PADES,
        certify=True,
        docmdp_permissions=fields.MDPPerm.NO_CHANGES,
        reason=reason,
        location=location,
    )
    try:
        with open(pdf_path, "rb") as src, open(out_path, "w+b") as out:
            writer = IncrementalPdfFileWriter(src, strict=False)
            signers.PdfSigner(meta, signer.signer).sign_pdf(writer, output=out)
    except (SigningError, PyHankoPdfError, ValueError, KeyError) as exc:
        raise ReportError(f"cannot sign the report: {type(exc).__name__}: {exc}".splitlines()[0]) from exc
