"""What every app shares: the API base class and error body, service errors, form helpers, streaming."""
