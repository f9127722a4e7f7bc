"""Periodic and queued billing work: thin wrappers that take ids and call services."""

from __future__ import annotations

from celery import shared_task

from billing.services import dunning


@shared_task(name="billing.dunning_tick_task")
def dunning_tick_task() -> int:
    """Take every due dunning step; any number of workers and beat schedulers may run it."""
    return len(dunning.dunning_tick())


@shared_task(name="billing.dunning_attempt_task", acks_late=True)
def dunning_attempt_task(subscription_id: str, campaign_id: str, attempt_id: str) -> str:
    """One payment retry of a dunning campaign (idempotent: a second delivery does nothing)."""
    return dunning.dunning_attempt_run(
        subscription_id=subscription_id, campaign_id=campaign_id, attempt_id=attempt_id
    )


@shared_task(
    name="billing.provider_subscription_cancel_task",
    autoretry_for=(Exception,),
    retry_backoff=True,
    max_retries=10,
)
def provider_subscription_cancel_task(subscription_id: str) -> str:
    """Cancel at the payment provider a subscription that dunning canceled here."""
    from billing.services.subscriptions import subscription_cancel_at_provider

    return subscription_cancel_at_provider(subscription_id=subscription_id)


@shared_task(name="billing.price_catalog_refresh_task")
def price_catalog_refresh_task() -> str:
    """Scheduled refresh of the model price catalog; a failure keeps the last good version."""
    from billing.services.prices import price_catalog_refresh

    return str(price_catalog_refresh().outcome)
