"""Training: the tf.data input pipeline from a manifest, the training loop, run directories.

TensorFlow is imported inside the functions that need it.
"""
