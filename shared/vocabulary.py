"""The closed vocabularies of the product, as the database's CHECK constraints allow them.

tests/integration/test_schema.py holds these equal to the constraints in db/schema_image_generation.sql.
"""

JOB_STATUSES = ("pending", "processing", "completed", "failed", "cancelled")
FINISHED_STATUSES = ("completed", "failed", "cancelled")
GENERATION_METHODS = ("openai", "fallback", "mixed")
IMAGE_METHODS = ("openai", "fallback")

SHOT_TYPES = (
    "extreme_close_up",
    "close_up",
    "medium_close_up",
    "medium",
    "cowboy",
    "full",
    "wide",
    "extreme_wide",
    "over_the_shoulder",
    "point_of_view",
    "establishing",
    "two_shot",
)
CAMERA_ANGLES = (
    "eye_level",
    "high_angle",
    "low_angle",
    "birds_eye",
    "worms_eye",
    "dutch_angle",
    "overhead",
    "aerial",
    "over_the_shoulder",
)
STYLES = (
    "photorealistic",
    "cinematic",
    "documentary",
    "film_noir",
    "vintage_film",
    "anime",
    "illustration",
    "watercolor",
    "oil_painting",
    "sketch",
    "render_3d",
    "pixel_art",
    "comic",
)
ASPECT_RATIOS = ("1:1", "16:9", "9:16", "4:3", "3:4", "3:2", "2:3")
REFERENCE_MIME_TYPES = ("image/jpeg", "image/png", "image/webp")

# Job webhooks (shared/webhooks/): the events a job may ask for, the `type` each is sent as
# (`completed` covers every finished status), a message's states and an attempt's outcomes.
WEBHOOK_EVENTS = ("started", "image", "completed")
WEBHOOK_TYPES = ("generation.started", "generation.image", "generation.completed")
WEBHOOK_MESSAGE_STATUSES = ("pending", "delivered", "failed", "stopped", "skipped")
WEBHOOK_OUTCOMES = ("delivered", "retry", "failed", "stopped")
