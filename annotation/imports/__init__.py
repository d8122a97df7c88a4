"""Bringing items in: JSONL/CSV files read and validated (importers.py), written by an RQ job."""
