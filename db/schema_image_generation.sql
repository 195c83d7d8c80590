-- Image generation schema: sessions, reference images, generation jobs, generated images and
-- the job/reference junction, with their indexes and triggers. Runs after db/schema.sql.
-- Safe to run any number of times: IF NOT EXISTS / CREATE OR REPLACE everywhere.
--
-- Foreign keys, and why each deletes the way it does:
--   * everything -> users            CASCADE   deleting a user deletes all of their data.
--   * generation_jobs -> sessions    CASCADE   a session is deleted "with everything in it".
--   * generated_images -> sessions   CASCADE   same; the job cascade would reach them anyway.
--   * generated_images -> jobs       CASCADE   an image exists only as the output of its job.
--   * reference_images -> sessions   SET NULL  a reference belongs to the user's library; the
--                                              session only records where it was uploaded.
--   * junction -> jobs / references  CASCADE   a link means nothing once either side is gone.
--
-- Vocabularies (kept in step with shared/vocabulary.py by tests/unit/test_vocabulary.py).

CREATE TABLE IF NOT EXISTS sessions (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id             uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    title               text NOT NULL DEFAULT 'New Session'
                        CONSTRAINT sessions_title_check CHECK (length(btrim(title)) BETWEEN 1 AND 200),
    -- The first generated image of the session, maintained by the triggers below.
    thumbnail_url       text,
    thumbnail_image_id  uuid,
    generated_count     integer NOT NULL DEFAULT 0
                        CONSTRAINT sessions_generated_count_check CHECK (generated_count >= 0),
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS reference_images (
    id               uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id          uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    session_id       uuid REFERENCES sessions (id) ON DELETE SET NULL,
    -- "{bucket}/{object name}", e.g. video-gen-image-bucket/uploads/{user_id}/{ts}_{name}.
    gcp_bucket_path  text NOT NULL CONSTRAINT reference_images_gcp_bucket_path_key UNIQUE,
    gcp_url          text NOT NULL,
    file_name        text NOT NULL
                     CONSTRAINT reference_images_file_name_check CHECK (length(file_name) BETWEEN 1 AND 255),
    file_size        bigint NOT NULL CONSTRAINT reference_images_file_size_check CHECK (file_size > 0),
    mime_type        text NOT NULL CONSTRAINT reference_images_mime_type_check
                     CHECK (mime_type IN ('image/jpeg', 'image/png', 'image/webp')),
    width            integer CONSTRAINT reference_images_width_check CHECK (width > 0),
    height           integer CONSTRAINT reference_images_height_check CHECK (height > 0),
    uploaded_at      timestamptz NOT NULL DEFAULT now()
);
-- The upload decoded once, upright and at most 2048 px a side ("{bucket}/{object name}" under
-- working/): what renders and the image model read (shared/uploads/working_copy.py). NULL for
-- references registered before working copies existed: those are read whole.
ALTER TABLE reference_images ADD COLUMN IF NOT EXISTS working_copy_path text;

-- Bucket paths of reference images their owner deleted. The object itself goes asynchronously
-- (object-deletions -> purge_objects), so a late finalize event or a reconcile run could find it
-- still there: registration skips a path named here. Object names carry a microsecond
-- timestamp and are never reused, so a tombstone never blocks a new upload.
CREATE TABLE IF NOT EXISTS deleted_reference_images (
    gcp_bucket_path  text PRIMARY KEY,
    deleted_at       timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS generation_jobs (
    id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id            uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    session_id         uuid REFERENCES sessions (id) ON DELETE CASCADE,
    prompt             text NOT NULL
                       CONSTRAINT generation_jobs_prompt_check CHECK (length(btrim(prompt)) BETWEEN 1 AND 4000),
    generated_prompt   text,
    shot_type          text CONSTRAINT generation_jobs_shot_type_check CHECK (shot_type IN (
                           'extreme_close_up', 'close_up', 'medium_close_up', 'medium', 'cowboy',
                           'full', 'wide', 'extreme_wide', 'over_the_shoulder', 'point_of_view',
                           'establishing', 'two_shot')),
    camera_angle       text CONSTRAINT generation_jobs_camera_angle_check CHECK (camera_angle IN (
                           'eye_level', 'high_angle', 'low_angle', 'birds_eye', 'worms_eye',
                           'dutch_angle', 'overhead', 'aerial', 'over_the_shoulder')),
    style              text CONSTRAINT generation_jobs_style_check CHECK (style IN (
                           'photorealistic', 'cinematic', 'documentary', 'film_noir', 'vintage_film',
                           'anime', 'illustration', 'watercolor', 'oil_painting', 'sketch',
                           'render_3d', 'pixel_art', 'comic')),
    location           text CONSTRAINT generation_jobs_location_check CHECK (length(location) <= 200),
    lighting           text CONSTRAINT generation_jobs_lighting_check CHECK (length(lighting) <= 200),
    weather            text CONSTRAINT generation_jobs_weather_check CHECK (length(weather) <= 200),
    is_custom_enabled  boolean NOT NULL DEFAULT false,
    aspect_ratio       text NOT NULL DEFAULT '1:1' CONSTRAINT generation_jobs_aspect_ratio_check
                       CHECK (aspect_ratio IN ('1:1', '16:9', '9:16', '4:3', '3:4', '3:2', '2:3')),
    number_of_shots    smallint NOT NULL DEFAULT 1
                       CONSTRAINT generation_jobs_number_of_shots_check CHECK (number_of_shots BETWEEN 1 AND 10),
    model_used         text,
    status             text NOT NULL DEFAULT 'pending' CONSTRAINT generation_jobs_status_check
                       CHECK (status IN ('pending', 'processing', 'completed', 'failed', 'cancelled')),
    error_message      text,
    generation_method  text CONSTRAINT generation_jobs_generation_method_check
                       CHECK (generation_method IN ('openai', 'fallback', 'mixed')),
    -- The client's Idempotency-Key and a hash of the request body it came with.
    idempotency_key    text CONSTRAINT generation_jobs_idempotency_key_check
                       CHECK (length(idempotency_key) BETWEEN 1 AND 255),
    request_hash       text,
    -- Delivery bookkeeping (shared/generation/: planning, rendering, sweeper):
    -- leases: {"plan" | "<shot index>": {"token": ..., "until": ...}}, claims kept alive by
    -- their holder's heartbeat; a key whose "until" has passed is free to claim again.
    leases             jsonb NOT NULL DEFAULT '{}',
    -- When every render message of the current attempt was published.
    dispatched_at      timestamptz,
    -- Re-drives by the sweeper since the job was (re)queued; the job fails past the limit.
    redrives           smallint NOT NULL DEFAULT 0,
    -- The job fails if it has not finished by then.
    deadline_at        timestamptz,
    -- Outbox of the one generation-events message of a finish: the transition that finishes
    -- the job holds the publication for a moment; the sweeper publishes what was left behind.
    event_lease_until  timestamptz,
    event_published_at timestamptz,
    started_at         timestamptz,
    completed_at       timestamptz,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now()
);
-- Why a failed job failed, as a stable code beside error_message (content_policy, ...).
ALTER TABLE generation_jobs ADD COLUMN IF NOT EXISTS error_code text;

CREATE TABLE IF NOT EXISTS generated_images (
    id                 uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    generation_job_id  uuid NOT NULL REFERENCES generation_jobs (id) ON DELETE CASCADE,
    -- Denormalised from the job for faster per-user and per-session queries.
    user_id            uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    session_id         uuid REFERENCES sessions (id) ON DELETE CASCADE,
    gcp_bucket_path    text NOT NULL CONSTRAINT generated_images_gcp_bucket_path_key UNIQUE,
    gcp_url            text NOT NULL,
    thumbnail_url      text,
    file_name          text NOT NULL,
    file_size          bigint NOT NULL CONSTRAINT generated_images_file_size_check CHECK (file_size > 0),
    mime_type          text NOT NULL DEFAULT 'image/jpeg',
    width              integer CONSTRAINT generated_images_width_check CHECK (width > 0),
    height             integer CONSTRAINT generated_images_height_check CHECK (height > 0),
    prompt_used        text,
    generation_index   smallint NOT NULL
                       CONSTRAINT generated_images_generation_index_check CHECK (generation_index BETWEEN 1 AND 10),
    -- What produced this image ('openai' or 'fallback'); the job's method summarises these.
    generation_method  text CONSTRAINT generated_images_generation_method_check
                       CHECK (generation_method IN ('openai', 'fallback')),
    created_at         timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT generated_images_job_index_key UNIQUE (generation_job_id, generation_index)
);

-- The object generations the render wrote (not in the design): a purge deletes an object only
-- while it is still that generation, so a shot rendered again under the same name survives a
-- late purge of the row it replaced.
ALTER TABLE generated_images ADD COLUMN IF NOT EXISTS object_generation bigint;
ALTER TABLE generated_images ADD COLUMN IF NOT EXISTS thumbnail_generation bigint;

CREATE TABLE IF NOT EXISTS generation_job_reference_images (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    generation_job_id   uuid NOT NULL REFERENCES generation_jobs (id) ON DELETE CASCADE,
    reference_image_id  uuid NOT NULL REFERENCES reference_images (id) ON DELETE CASCADE,
    created_at          timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT generation_job_reference_images_pair_key UNIQUE (generation_job_id, reference_image_id)
);

-- What counts against the per-user limits of shared/limits/ (rolling 24 hours). Each row is
-- written under the user's row lock by a conditional INSERT, so concurrent requests cannot
-- overshoot. Rows stay when the job or the reference image goes: deleting does not refund.
-- images_requested: the images a job asks for, on create and on each retry (the missing shots,
-- none when a retried job has them all).
CREATE TABLE IF NOT EXISTS images_requested (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    user_id       uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    images        smallint NOT NULL CONSTRAINT images_requested_images_check CHECK (images BETWEEN 0 AND 10),
    requested_at  timestamptz NOT NULL DEFAULT now()
);

-- upload_tickets: one per object name a user may upload (a signed URL issued, or POST
-- /v1/uploads); register_upload quarantines an object without one, or larger than its ticket.
CREATE TABLE IF NOT EXISTS upload_tickets (
    gcp_bucket_path  text PRIMARY KEY,
    user_id          uuid NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    file_size        bigint NOT NULL CONSTRAINT upload_tickets_file_size_check CHECK (file_size > 0),
    issued_at        timestamptz NOT NULL DEFAULT now()
);

-- The transactional outbox of object deletions (not in the design; see shared/purge.py). Rows
-- that name bucket objects are deleted in the same transaction that writes their object names
-- (and the generations recorded for them, NULL where none was) here; after commit the row's id
-- is published to the object-deletions topic, and purge_objects deletes the objects the row
-- names, then the row. A row still here once `publish_after` has passed (its publish failed, its
-- publisher died, its purge never came) is published again by the maintenance task
-- `republish_deletions`.
CREATE TABLE IF NOT EXISTS pending_object_deletions (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    object_names   text[] NOT NULL CONSTRAINT pending_object_deletions_object_names_check
                   CHECK (cardinality(object_names) BETWEEN 1 AND 1000),
    reason         text NOT NULL,
    attempts       integer NOT NULL DEFAULT 0,
    publish_after  timestamptz NOT NULL DEFAULT now(),
    created_at     timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE pending_object_deletions ADD COLUMN IF NOT EXISTS object_generations bigint[]
    CONSTRAINT pending_object_deletions_object_generations_check
    CHECK (cardinality(object_generations) = cardinality(object_names));

-- Job webhooks (shared/webhooks/): where a job's events go and which ones. Added after the
-- design's columns, so existing databases get them too.
ALTER TABLE generation_jobs ADD COLUMN IF NOT EXISTS webhook text
    CONSTRAINT generation_jobs_webhook_check CHECK (length(webhook) BETWEEN 1 AND 2000);
ALTER TABLE generation_jobs ADD COLUMN IF NOT EXISTS webhook_events text[]
    CONSTRAINT generation_jobs_webhook_events_check
    CHECK (webhook_events <@ ARRAY['started', 'image', 'completed']);

-- Each user's Standard Webhooks signing secret: "whsec_" and 32 random bytes in base64. A
-- rotation keeps the previous secret until previous_expires_at; deliveries are signed with
-- both meanwhile.
CREATE EXTENSION IF NOT EXISTS pgcrypto;
CREATE TABLE IF NOT EXISTS webhook_secrets (
    user_id              uuid PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    secret               text NOT NULL DEFAULT 'whsec_' || encode(gen_random_bytes(32), 'base64')
                         CONSTRAINT webhook_secrets_secret_check CHECK (secret LIKE 'whsec\_%'),
    previous_secret      text,
    previous_expires_at  timestamptz,
    created_at           timestamptz NOT NULL DEFAULT now(),
    rotated_at           timestamptz
);

-- One message per webhook event of a job (started, an image, a finish): its Standard Webhooks
-- `webhook-id` is 'msg_' and the id's hex, the same on every attempt. `event_key` is the
-- domain key that makes recording it idempotent ('started:<started_at>', 'image:<image id>',
-- 'completed:<finish event id>'); `sequence` counts the job's events in the order they were
-- recorded, so a receiver can drop a delivery older than one it has.
CREATE TABLE IF NOT EXISTS webhook_messages (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    job_id         uuid NOT NULL REFERENCES generation_jobs (id) ON DELETE CASCADE,
    event_key      text NOT NULL,
    type           text NOT NULL CONSTRAINT webhook_messages_type_check
                   CHECK (type IN ('generation.started', 'generation.image', 'generation.completed')),
    sequence       integer NOT NULL CONSTRAINT webhook_messages_sequence_check CHECK (sequence > 0),
    image_index    smallint,
    occurred_at    timestamptz NOT NULL,
    -- pending (being delivered or to be retried), delivered (2xx), failed (a 4xx other than
    -- 408, 410 and 429, or an address refused), stopped (410: nothing more for this job),
    -- skipped (not sent: the receiver had stopped the job's deliveries).
    status         text NOT NULL DEFAULT 'pending' CONSTRAINT webhook_messages_status_check
                   CHECK (status IN ('pending', 'delivered', 'failed', 'stopped', 'skipped')),
    attempts       integer NOT NULL DEFAULT 0,
    -- The claim of the attempt in flight (no two attempts of an event at once).
    lease_until    timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT webhook_messages_job_key_key UNIQUE (job_id, event_key),
    CONSTRAINT webhook_messages_job_sequence_key UNIQUE (job_id, sequence)
);

-- Every delivery attempt: one POST, its answer or error, and how long it took.
CREATE TABLE IF NOT EXISTS webhook_deliveries (
    id                uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    message_id        uuid NOT NULL REFERENCES webhook_messages (id) ON DELETE CASCADE,
    job_id            uuid NOT NULL REFERENCES generation_jobs (id) ON DELETE CASCADE,
    attempt           integer NOT NULL CONSTRAINT webhook_deliveries_attempt_check CHECK (attempt > 0),
    outcome           text NOT NULL CONSTRAINT webhook_deliveries_outcome_check
                      CHECK (outcome IN ('delivered', 'retry', 'failed', 'stopped')),
    status_code       smallint,
    error             text,
    latency_ms        integer NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT webhook_deliveries_message_attempt_key UNIQUE (message_id, attempt)
);

-- The image model's limits per OpenAI organisation (not in the design; see
-- shared/generation/model_slots.py). One row per image call in flight or started within the last
-- minute, under the token of the shot claim that holds it: in flight until it ends or its lease
-- lapses (the claim's heartbeat renews both). Admissions count these rows under a lock per
-- organisation, and delete the ones that no longer count.
CREATE TABLE IF NOT EXISTS model_calls (
    token         text PRIMARY KEY,
    organisation  text NOT NULL,
    started_at    timestamptz NOT NULL DEFAULT now(),
    lease_until   timestamptz NOT NULL,
    ended_at      timestamptz
);

-- An organisation the model answered 429: nothing is admitted for it before paused_until.
CREATE TABLE IF NOT EXISTS model_pauses (
    organisation  text PRIMARY KEY,
    paused_until  timestamptz NOT NULL
);

-- Indexes: foreign keys, statuses, and the (owner, time, id) keys every list pages by.
CREATE INDEX IF NOT EXISTS sessions_user_updated_idx
    ON sessions (user_id, updated_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS reference_images_user_uploaded_idx
    ON reference_images (user_id, uploaded_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS reference_images_session_idx
    ON reference_images (session_id);
CREATE INDEX IF NOT EXISTS generation_jobs_user_created_idx
    ON generation_jobs (user_id, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS generation_jobs_session_created_idx
    ON generation_jobs (session_id, created_at DESC, id DESC);
CREATE INDEX IF NOT EXISTS generation_jobs_status_idx
    ON generation_jobs (status);
-- The sweeper's scan: only unfinished jobs, oldest activity first.
CREATE INDEX IF NOT EXISTS generation_jobs_active_idx
    ON generation_jobs (updated_at) WHERE status IN ('pending', 'processing');
-- Finished jobs whose generation-events message is not out yet.
CREATE INDEX IF NOT EXISTS generation_jobs_event_outbox_idx
    ON generation_jobs (completed_at)
    WHERE event_published_at IS NULL AND status IN ('completed', 'failed', 'cancelled');
CREATE UNIQUE INDEX IF NOT EXISTS generation_jobs_user_idempotency_key_idx
    ON generation_jobs (user_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
-- A session's images, oldest first (the deletion trigger's next thumbnail); also the index of
-- the session_id foreign key. (An earlier (session_id, job, index) index was redundant with it.)
CREATE INDEX IF NOT EXISTS generated_images_session_created_idx
    ON generated_images (session_id, created_at, id);
DROP INDEX IF EXISTS generated_images_session_idx;
CREATE INDEX IF NOT EXISTS generated_images_user_created_idx
    ON generated_images (user_id, created_at DESC, id DESC);
-- The limits' counts: a user's unfinished jobs, and their rows of the last day.
CREATE INDEX IF NOT EXISTS generation_jobs_user_active_idx
    ON generation_jobs (user_id) WHERE status IN ('pending', 'processing');
CREATE INDEX IF NOT EXISTS images_requested_user_requested_idx
    ON images_requested (user_id, requested_at);
CREATE INDEX IF NOT EXISTS upload_tickets_user_issued_idx
    ON upload_tickets (user_id, issued_at);
CREATE INDEX IF NOT EXISTS pending_object_deletions_due_idx
    ON pending_object_deletions (publish_after);
-- An admission's two counts: calls started in the last minute, and calls in flight.
CREATE INDEX IF NOT EXISTS model_calls_started_idx
    ON model_calls (organisation, started_at);
CREATE INDEX IF NOT EXISTS model_calls_in_flight_idx
    ON model_calls (organisation, lease_until) WHERE ended_at IS NULL;
CREATE INDEX IF NOT EXISTS generation_job_reference_images_reference_idx
    ON generation_job_reference_images (reference_image_id);
-- A job's delivery attempts, newest first (GET /v1/generations/{id}/webhook-deliveries).
CREATE INDEX IF NOT EXISTS webhook_deliveries_job_created_idx
    ON webhook_deliveries (job_id, created_at DESC, id DESC);

-- Session bookkeeping: every image counts once, and the thumbnail is the session's first
-- image by (created_at, id), the order the design's example query uses. Each trigger locks the
-- session row before it decides (FOR NO KEY UPDATE, which the foreign-key checks of other
-- image inserts do not wait for), so concurrent inserts and deletes of a session's images take
-- turns, and each decides on what the one before it committed (a statement after the lock sees
-- a fresh snapshot). A session that is gone (deleted, its images going by cascade) or none
-- means nothing to do, so deleting a session costs its images' triggers one lookup each.
CREATE OR REPLACE FUNCTION update_session_on_image_generation() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    thumbnail_id uuid;
BEGIN
    SELECT thumbnail_image_id INTO thumbnail_id
      FROM sessions WHERE id = NEW.session_id FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    IF thumbnail_id IS NULL OR NOT EXISTS (
        SELECT 1 FROM generated_images
         WHERE id = thumbnail_id AND (created_at, id) < (NEW.created_at, NEW.id)
    ) THEN
        UPDATE sessions
           SET generated_count    = generated_count + 1,
               thumbnail_image_id = NEW.id,
               thumbnail_url      = NEW.gcp_url
         WHERE id = NEW.session_id;
    ELSE
        UPDATE sessions SET generated_count = generated_count + 1 WHERE id = NEW.session_id;
    END IF;
    RETURN NULL;
END;
$$;

-- When an image goes, the count follows; when the thumbnail image itself goes, the next first
-- image of the session becomes the thumbnail, or none is left.
CREATE OR REPLACE FUNCTION update_session_on_image_deletion() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    thumbnail_id uuid;
    next_image record;
BEGIN
    SELECT thumbnail_image_id INTO thumbnail_id
      FROM sessions WHERE id = OLD.session_id FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    IF thumbnail_id IS DISTINCT FROM OLD.id THEN
        UPDATE sessions
           SET generated_count = GREATEST(generated_count - 1, 0)
         WHERE id = OLD.session_id;
        RETURN NULL;
    END IF;
    SELECT id, gcp_url INTO next_image
      FROM generated_images
     WHERE session_id = OLD.session_id
     ORDER BY created_at, id
     LIMIT 1;
    UPDATE sessions
       SET generated_count    = GREATEST(generated_count - 1, 0),
           thumbnail_image_id = next_image.id,
           thumbnail_url      = next_image.gcp_url
     WHERE id = OLD.session_id;
    RETURN NULL;
END;
$$;

CREATE OR REPLACE TRIGGER update_session_on_image_generation
    AFTER INSERT ON generated_images
    FOR EACH ROW EXECUTE FUNCTION update_session_on_image_generation();

CREATE OR REPLACE TRIGGER update_session_on_image_deletion
    AFTER DELETE ON generated_images
    FOR EACH ROW EXECUTE FUNCTION update_session_on_image_deletion();

CREATE OR REPLACE TRIGGER sessions_set_updated_at
    BEFORE UPDATE ON sessions
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE OR REPLACE TRIGGER webhook_messages_set_updated_at
    BEFORE UPDATE ON webhook_messages
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE OR REPLACE TRIGGER generation_jobs_set_updated_at
    BEFORE UPDATE ON generation_jobs
    FOR EACH ROW EXECUTE FUNCTION set_updated_at();

-- Change notifications for blocking reads (shared/changes.py: one LISTEN connection per api
-- instance). The transactions that change a job (its row, or an image recorded or deleted) or a
-- session notify 'job:<id>' or 'session:<id>' on the channel imagegen_changes; PostgreSQL
-- delivers them at commit, once per distinct payload per transaction, and never for a rollback.
-- Claims and heartbeats change only `leases` and notify nothing.
CREATE OR REPLACE FUNCTION notify_change() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    changed jsonb := to_jsonb(CASE TG_OP WHEN 'DELETE' THEN OLD ELSE NEW END);
BEGIN
    PERFORM pg_notify('imagegen_changes', TG_ARGV[0] || ':' || (changed ->> TG_ARGV[1]));
    RETURN NULL;
END;
$$;

CREATE OR REPLACE TRIGGER generation_jobs_notify_update
    AFTER UPDATE ON generation_jobs
    FOR EACH ROW
    WHEN ((to_jsonb(OLD) - 'leases' - 'updated_at') IS DISTINCT FROM (to_jsonb(NEW) - 'leases' - 'updated_at'))
    EXECUTE FUNCTION notify_change('job', 'id');

CREATE OR REPLACE TRIGGER generation_jobs_notify_delete
    AFTER DELETE ON generation_jobs
    FOR EACH ROW EXECUTE FUNCTION notify_change('job', 'id');

CREATE OR REPLACE TRIGGER generated_images_notify_change
    AFTER INSERT OR DELETE ON generated_images
    FOR EACH ROW EXECUTE FUNCTION notify_change('job', 'generation_job_id');

CREATE OR REPLACE TRIGGER sessions_notify_change
    AFTER UPDATE OR DELETE ON sessions
    FOR EACH ROW EXECUTE FUNCTION notify_change('session', 'id');
