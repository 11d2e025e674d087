"""Figures and captions from PDF papers (COVID-CT's PyMuPDF mining), made automatic.

The algorithms (:mod:`captions`, :mod:`figures`, :mod:`pairing`, :mod:`panels`) work on a plain
page model (:mod:`layout`) and numpy arrays; :mod:`document` reads that model from PyMuPDF and
writes the images, and :mod:`pipeline` runs one PDF end to end (the unit of ``--jobs``).
"""
