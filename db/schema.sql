-- Base schema: users. Safe to run any number of times (run before schema_image_generation.sql).

-- Shared by every table with an updated_at column.
CREATE OR REPLACE FUNCTION set_updated_at() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END;
$$;

CREATE TABLE IF NOT EXISTS users (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    -- The identity provider's subject (Firebase Auth / Identity Platform `sub` claim).
    auth_subject  text NOT NULL CONSTRAINT users_auth_subject_key UNIQUE
                  CONSTRAINT users_auth_subject_check CHECK (length(auth_subject) BETWEEN 1 AND 255),
    email         text CONSTRAINT users_email_check CHECK (length(email) <= 320),
    display_name  text CONSTRAINT users_display_name_check CHECK (length(display_name) <= 200),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

CREATE OR REPLACE TRIGGER users_set_updated_at
    BEFORE UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- Per-user limits an operator sets without a deploy (README, "Limits"): a NULL column takes the
-- configured default (LIMIT_* variables), a number overrides it for this user only.
CREATE TABLE IF NOT EXISTS user_limits (
    user_id               uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    active_jobs           integer CONSTRAINT user_limits_active_jobs_check CHECK (active_jobs >= 0),
    images_per_day        integer CONSTRAINT user_limits_images_per_day_check CHECK (images_per_day >= 0),
    uploads_per_day       integer CONSTRAINT user_limits_uploads_per_day_check CHECK (uploads_per_day >= 0),
    upload_bytes_per_day  bigint CONSTRAINT user_limits_upload_bytes_per_day_check CHECK (upload_bytes_per_day >= 0),
    note                  text,
    updated_at            timestamptz NOT NULL DEFAULT now()
);

CREATE OR REPLACE TRIGGER user_limits_set_updated_at
    BEFORE UPDATE ON user_limits
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();
