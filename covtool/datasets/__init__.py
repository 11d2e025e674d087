"""Readers for the public datasets in their authors' own layouts (``covtool ingest``).

One module per dataset; each exposes ``ingest_<name>(root, ...) -> Ingested``: the manifest rows
and, per reason, how many items were removed (see :mod:`covtool.datasets.common`).
"""
