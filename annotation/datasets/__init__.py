"""Datasets: immutable content-hashed snapshots of approved items and their leakage-free splits."""
