"""Training runs: start, run in an RQ worker, follow, cancel, resume, serve and predict."""
