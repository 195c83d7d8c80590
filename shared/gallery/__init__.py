"""A session's generated images: its gallery and deleting one image."""
