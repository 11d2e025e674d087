"""TensorFlow's errors about covtool's images, translated back into one line naming the file.

A reader inside ``tf.numpy_function`` cannot raise a covtool error through TensorFlow: it raises
a ``ValueError`` carrying a mark (:func:`size_mismatch`, :func:`unreadable`), and
:func:`translate_tf_error` finds the mark in the ``OpError`` TensorFlow raises instead.

Before the translated error is raised, :func:`release_pipelines` frees the input pipeline the
failed call left behind: otherwise the process can hang after printing its one line (see there).
"""

from __future__ import annotations

import gc
import re
from collections.abc import Iterator
from contextlib import contextmanager

from covtool.core.errors import ImageError

SIZE_MARK = "covtool-size-mismatch"
READ_MARK = "covtool-unreadable"
READ_PREFIX = "could not read the image: "


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
            return ImageError(f"{READ_PREFIX}{m.group(2).strip()}", m.group(1))
    if "ImageError" in text:
        return ImageError(f"could not read an image ({text.strip().splitlines()[0][:200]})")
    return None


#: Where Keras 3 keeps a ``tf.data`` iterator on the model between calls (``fit`` keeps its
#: validation iterator there and drops it only when every epoch has run).
_MODEL_ITERATORS = ("_eval_epoch_iterator",)


def release_pipelines(exc: BaseException, *models) -> None:
    """Free, now, the ``tf.data`` iterators a failed ``fit``/``predict``/loop left behind.

    A reader's error stops an iterator whose parallel map and prefetch still have
    ``numpy_function`` calls in flight. The iterator stays referenced by the error's traceback
    (the finished frames' locals) and by the model (``_eval_epoch_iterator``), in reference
    cycles that only the interpreter's last garbage collection frees: at exit, where the worker
    threads can no longer take the GIL, so the iterator's destructor waits for them for ever
    (the process printed its error, then sat in a futex wait at 0 % CPU). Dropped here, while
    the interpreter runs, the destructor cancels the pipeline and its threads finish.

    Parameters
    ----------
    exc : BaseException
        The error; the locals of the finished frames of its traceback (and their callers'), and
        of the errors it was raised from or while handling, are cleared.
    *models : keras.Model
        Models whose stored iterators are dropped.
    """
    for model in models:
        for attr in _MODEL_ITERATORS:
            if getattr(model, attr, None) is not None:
                setattr(model, attr, None)
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        tb = exc.__traceback__
        while tb is not None:
            _clear_finished(tb.tb_frame)
            tb = tb.tb_next
        exc = exc.__cause__ or exc.__context__
    gc.collect()


def _clear_finished(frame) -> None:
    """Clear a finished frame's locals and its finished callers' (Keras and TensorFlow re-raise
    with filtered tracebacks: the frames that held the iterator are only reachable as the
    ``f_back`` of a frame the traceback kept)."""
    while frame is not None:
        try:
            frame.clear()
        except RuntimeError:  # still running (a caller of the failed call): it and its callers live
            return
        frame = frame.f_back


@contextmanager
def translated_tf_errors(*models) -> Iterator[None]:
    """Run a block, raising TensorFlow's errors about our images as :func:`translate_tf_error`'s,
    after :func:`release_pipelines` (of ``models`` too) has freed the block's input pipeline."""
    import tensorflow as tf

    try:
        yield
    except BaseException as exc:  # an interrupt, too, leaves the pipeline running
        release_pipelines(exc, *models)
        err = translate_tf_error(exc) if isinstance(exc, tf.errors.OpError) else None
        if err is not None:
            raise err from None
        raise
