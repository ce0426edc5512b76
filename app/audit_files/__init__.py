"""Readers of standard audit files: XAF (Netherlands), FEC (France), SAF-T Financial.

:func:`read_audit_file` recognises the format from the file's first bytes (and, for FEC,
its header line) and returns the reader's items (see :mod:`.common`); :func:`schema_for`
names the official schema to check an XML format against. The readers are pure: no
database, no Flask; :mod:`app.services.audit_file_import` checks and writes what they read.
"""
from __future__ import annotations

from . import fec, saft, xaf
from .common import AuditFileRejected

__all__ = ["AuditFileRejected", "detect", "read_audit_file", "schema_for"]

#: file name endings the upload form offers for audit files
EXTENSIONS = (".xaf", ".xml", ".txt", ".csv", ".fec")


def detect(stream):
    """``"xaf"``, ``"saft"``, ``"fec"`` or None, from the head of ``stream`` (rewound)."""
    start = stream.tell()
    head = stream.read(8192)
    stream.seek(start)
    if xaf.looks_like(head):
        return "xaf"
    if saft.looks_like(head):
        return "saft"
    if fec.looks_like(head):
        return "fec"
    return None


def read_audit_file(stream, filename=""):
    """The items of the audit file in ``stream`` (a seekable binary stream), read as iterated."""
    kind = detect(stream)
    if kind == "xaf":
        return xaf.read(stream)
    if kind == "saft":
        return saft.read(stream)
    if kind == "fec":
        return fec.read(stream, filename)
    raise AuditFileRejected(["The file is not an audit file Firmsync reads: upload an XML Auditfile Financieel "
                             "(XAF 3.2 or 4.0), a FEC (tab- or |-separated) or a SAF-T Financial file."])


def schema_for(stream):
    """The schema path (relative to the audit-file specs folder) of the XML file in ``stream``,
    or None when its format has no published schema here (the stream is rewound)."""
    kind = detect(stream)
    if kind not in ("xaf", "saft"):
        return None
    start = stream.tell()
    head = stream.read(8192)
    stream.seek(start)
    module = xaf if kind == "xaf" else saft
    for uri, version in module.NAMESPACES.items():
        if uri.encode() in head:
            return module.SCHEMAS.get(version)
    return None
