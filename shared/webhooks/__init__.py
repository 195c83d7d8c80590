"""Job webhooks: each user's Standard Webhooks signing secret (routes /v1/webhook-secret...),
delivering a job's events to the URL it names (`deliver_webhooks`, on generation-events), and
the record of every attempt (GET /v1/generations/{id}/webhook-deliveries)."""
