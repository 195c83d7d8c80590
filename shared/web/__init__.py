"""The `api` function's HTTP layer: route table, dispatch, request parsing, bearer tokens,
pagination, and the routes that belong to no capability (/v1/healthz, /v1/me)."""
