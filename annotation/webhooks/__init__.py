"""Webhooks: the endpoints owners register for a project's events, signed deliveries from RQ, their log."""
