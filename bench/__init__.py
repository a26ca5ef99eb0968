"""Benchmark of the export_rows stream against a minimal hand-written client.

Run `python -m bench --help`; bench/README.md says what is measured and how to read it.
"""
