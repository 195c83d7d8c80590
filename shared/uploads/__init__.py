"""Reference images: both upload routes, registration on the bucket's finalize event, the
backfill that registers what the event missed, image inspection, file names and quarantine."""
