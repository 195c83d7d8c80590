"""Reference images: both upload routes, registration on the bucket's finalize event, the
backfill that registers what the event missed, image inspection, working copies (and, in
`service`, the one a render makes for a reference from before them), file names and
quarantine."""
