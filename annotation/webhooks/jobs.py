"""The RQ job of webhooks (queue "default"): its argument is a delivery id, its outcome lives in that row."""

from __future__ import annotations

from annotation.webhooks.services import delivery_attempt


def webhook_deliver_job(delivery_id: int) -> None:
    delivery_attempt(delivery_id=delivery_id)
