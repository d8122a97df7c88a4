"""Review: routing annotated items, the review queue, append-only decisions and every item's history."""
