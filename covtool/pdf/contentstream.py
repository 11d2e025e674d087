"""What a page's content stream draws, read from its bytes: no PDF library here.

Used to tell apart image XObjects of the same pixel size by the order the page draws them (a
regular expression over the operators is much cheaper than hashing every image's pixels).
"""

from __future__ import annotations

import re

# an inline image's BI operator (the look-behind after "BI": a regex that starts with a literal
# is searched for that literal, 40 times faster on a long content stream than one that starts
# with a look-behind)
_BI = re.compile(rb"BI(?<![^\s\]>)]BI)(?![^\s/\[<(])")
_DO = re.compile(rb"/([^\s/\[\]()<>{}%]+)\s*Do(?![^\s/\[\]()<>{}%])")


def has_inline_image(content: bytes) -> bool:
    """The content stream draws an inline image (``BI ... ID ... EI``)."""
    return _BI.search(content) is not None


def drawn_xobjects(content: bytes, names: dict[bytes, int]) -> list[int] | None:
    """The XObjects a content stream draws (``/Name Do``), in drawing order, by the xref that
    ``names`` gives each resource name; names it does not hold are left out. None when the
    stream holds an inline image (``BI ... ID ... EI``): its order cannot be told from names.
    """
    if _BI.search(content):
        return None
    return [names[m.group(1)] for m in _DO.finditer(content) if m.group(1) in names]
