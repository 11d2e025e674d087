"""TensorFlow's errors about covtool's images, translated back into one line naming the file.

A reader inside ``tf.numpy_function`` cannot raise a covtool error through TensorFlow: it raises
a ``ValueError`` carrying a mark (:func:`size_mismatch`, :func:`unreadable`), and
:func:`translate_tf_error` finds the mark in the ``OpError`` TensorFlow raises instead.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from covtool.core.errors import ImageError

SIZE_MARK = "covtool-size-mismatch"
READ_MARK = "covtool-unreadable"


def size_mismatch(name: str, shape, size) -> ValueError:
    """The error a reader raises for an image of another size than the model's."""
    return ValueError(f"{SIZE_MARK}[{name}] {shape[0]}x{shape[1]} {size[0]}x{size[1]}")


def unreadable(name: str, reason: str) -> ValueError:
    """The error a reader raises for a file it cannot decode."""
    return ValueError(f"{READ_MARK}[{name}] {' '.join(reason.split())}")


def translate_tf_error(exc: BaseException) -> ImageError | None:
    """A one-line covtool error for TensorFlow's errors about our images, else ``None``."""
    text = str(exc)
    if SIZE_MARK in text:
        m = re.search(re.escape(SIZE_MARK) + r"\[(.+?)\] (\d+x\d+) (\d+x\d+)", text)
        if m:
            return ImageError(f"image is {m.group(2)} but the model takes {m.group(3)} "
                              f"(images are resized only to a given input size)", m.group(1))
        return ImageError("an image's size does not match the model's input (images are resized "
                          "only to a given input size)")
    if READ_MARK in text:
        m = re.search(re.escape(READ_MARK) + r"\[(.+?)\] ([^\n]+)", text)
        if m:
            return ImageError(f"could not read the image: {m.group(2).strip()}", m.group(1))
    if "ImageError" in text:
        return ImageError(f"could not read an image ({text.strip().splitlines()[0][:200]})")
    return None


@contextmanager
def translated_tf_errors() -> Iterator[None]:
    """Run a block, raising TensorFlow's errors about our images as :func:`translate_tf_error`'s."""
    import tensorflow as tf

    try:
        yield
    except tf.errors.OpError as exc:
        err = translate_tf_error(exc)
        if err is not None:
            raise err from None
        raise
