"""Quality: agreement figures and label-noise scans (pure agreement.py, noise.py, embeddings.py)."""
