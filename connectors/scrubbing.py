"""Keeping secrets out of messages: pure functions shared by the connectors and the app.

Connectors cannot import :mod:`app`, so the scrubbing rules live here and
:mod:`app.secret_scrubbing` re-exports them.
"""
import re

#: values of these keys are replaced wherever a mapping is scrubbed
SECRET_KEY_PATTERN = re.compile(
    r"(pass(word)?|secret|token|api[_-]?key|access[_-]?key|authorization|client[_-]?secret|refresh|credential)",
    re.I,
)
_INLINE = re.compile(
    r"(?i)(\b(?:access_token|refresh_token|client_secret|password|api_key|apikey|token|code|secret)\b\s*[=:]\s*)([^\s&,;\"']+)"
)
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{6,}")
MASK = "***"


def scrub_text(text, secrets=()):
    """Remove known secret values and anything shaped like a credential from ``text``."""
    if not text:
        return text
    text = str(text)
    for value in sorted({str(s) for s in secrets if s and len(str(s)) >= 4}, key=len, reverse=True):
        text = text.replace(value, MASK)
    text = _BEARER.sub(lambda m: f"{m.group(1)} {MASK}", text)
    return _INLINE.sub(lambda m: m.group(1) + MASK, text)


def secret_values(mapping):
    """Every string value under a secret-looking key of a (nested) mapping."""
    found = []
    if isinstance(mapping, dict):
        for key, value in mapping.items():
            if isinstance(value, (dict, list)):
                found.extend(secret_values(value))
            elif isinstance(value, str) and SECRET_KEY_PATTERN.search(str(key)):
                found.append(value)
    elif isinstance(mapping, list):
        for item in mapping:
            found.extend(secret_values(item))
    return found
