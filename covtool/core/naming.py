"""Names: natural ordering of slice files and file-system-safe item ids."""

from __future__ import annotations

import re

_DIGITS = re.compile(r"(\d+)")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def natural_key(text: str) -> tuple:
    """Sort key that orders embedded numbers by value: ``IM2`` before ``IM10``."""
    text = str(text)
    parts = _DIGITS.split(text)
    key = tuple((0, int(p)) if p.isdigit() else (1, p.lower()) for p in parts if p != "")
    return key + ((2, text),)  # exact text breaks ties (IM01 vs IM1) deterministically


def natural_sorted(items, key=lambda x: x):
    return sorted(items, key=lambda x: natural_key(str(key(x))))


def safe_id(*parts: object) -> str:
    """Join parts into an id that is safe as a file name (``[A-Za-z0-9._-]``)."""
    joined = "_".join(str(p) for p in parts if str(p) != "")
    cleaned = _UNSAFE.sub("-", joined).strip("-.")
    return cleaned or "item"
