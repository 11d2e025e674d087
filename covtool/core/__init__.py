"""Shared plumbing: manifests, image I/O, atomic writes, errors, progress, sharding."""
