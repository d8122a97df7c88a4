"""Text normalisation shared by import de-duplication and leakage-free splits (no Django)."""

from __future__ import annotations

import hashlib
import unicodedata


def normalise(text: str) -> str:
    """Unicode NFKC, case-folded, whitespace collapsed: two texts equal here are exact duplicates."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def content_hash(text: str, response: str = "") -> str:
    """32 hex chars identifying an item's normalised content (prompt and response for instruction items)."""
    payload = normalise(text) if not response else normalise(text) + "\x1f" + normalise(response)
    return hashlib.blake2b(payload.encode("utf-8"), digest_size=16).hexdigest()
