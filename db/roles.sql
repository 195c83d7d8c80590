-- The functions' database privileges (infra/RUNBOOK.md, "Migrations through the Cloud SQL
-- connector"): run by the schema's owner after a migration that adds tables, then each
-- function's IAM database user is granted one role. Safe to run any number of times.
--   app_rw        every function but deliver-webhooks: reads and writes the application's rows.
--   app_webhooks  deliver-webhooks: reads what a job shows and its owner's signing secret, and
--                 writes nothing but its delivery records (webhook_messages, webhook_deliveries).
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'app_rw') THEN
        CREATE ROLE app_rw;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'app_webhooks') THEN
        CREATE ROLE app_webhooks;
    END IF;
END
$$;

GRANT USAGE ON SCHEMA public TO app_rw, app_webhooks;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO app_rw;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO app_rw;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO app_rw;

GRANT SELECT ON generation_jobs, generated_images, generation_job_reference_images,
    reference_images, webhook_secrets TO app_webhooks;
GRANT SELECT, INSERT, UPDATE ON webhook_messages TO app_webhooks;
GRANT SELECT, INSERT ON webhook_deliveries TO app_webhooks;
