"""SC2-MID visual features: shape (scale.py, shape.py), texture (texture.py) and deep (deep.py).

``deep`` imports TensorFlow lazily; the other modules never do.
"""
