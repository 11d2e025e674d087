"""Generators of realistic synthetic data (CT series, EM images, PDFs) for the demo and tests.

Everything here is deterministic for a seed, so tests can state exact expectations.
"""
