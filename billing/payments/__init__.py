"""Payment providers: verify their webhooks, retry invoices, cancel subscriptions."""
