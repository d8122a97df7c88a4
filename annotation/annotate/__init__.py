"""The annotate loop: claims under the overlap promise, drafts, submissions, undo and progress."""
