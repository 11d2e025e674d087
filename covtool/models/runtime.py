"""Importing TensorFlow without its C++ start-up chatter on the user's terminal.

TensorFlow 2.21 prints CUDA probing and oneDNN notices from C++ before its logging is set up,
so ``TF_CPP_MIN_LOG_LEVEL`` cannot silence them. The deep-learning commands import it once
through :func:`import_tensorflow`, with file descriptor 2 pointed at /dev/null for the duration
of the import only; Python errors still surface normally, and ``--debug`` keeps everything.
"""

from __future__ import annotations

import os
import sys


def import_tensorflow(quiet: bool = True):
    """``import tensorflow`` (once), hiding what its C++ side prints while it loads."""
    if "tensorflow" in sys.modules or not quiet:
        import tensorflow as tf

        return tf
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import tensorflow as tf
        tf.config.list_physical_devices()  # device probing prints too
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
    return tf
