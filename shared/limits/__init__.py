"""Per-user limits: active jobs, images and uploads per rolling day, enforced in PostgreSQL,
answered with 429 and the RateLimit headers; GET /v1/me shows them with their usage."""
