"""Figures and captions from PDF papers (COVID-CT's PyMuPDF mining), made automatic.

The algorithms (:mod:`captions`, :mod:`figures`, :mod:`pairing`, :mod:`panels`, the title and
DOI of :mod:`metadata`, the content-stream scan of :mod:`contentstream`) work on a plain page
model (:mod:`layout`), bytes and numpy arrays; :mod:`document` reads that model and the images
from PyMuPDF, and :mod:`pipeline` runs one PDF end to end (the unit of parallel jobs).
"""
