"""The one normal form of an email address, used wherever an email is stored, looked up or counted.

``normalize_email`` applies Unicode NFKC, then case folding, then NFKC again (folding can leave a string
that is not in NFKC; the second pass makes the function idempotent). Two spellings that a human would
read as the same address (``Ada@Example.com``, ``ＡＤＡ@example.com``, ``STRASSE@x`` / ``straße@x``) get
one form, so registration refuses the second, login finds the same account, and the login throttle
counts them under one key.
"""

from __future__ import annotations

import unicodedata


def normalize_email(email: str) -> str:
    folded = unicodedata.normalize("NFKC", (email or "").strip()).casefold()
    return unicodedata.normalize("NFKC", folded).strip()
