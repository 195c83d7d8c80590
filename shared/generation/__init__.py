"""Generation jobs: the create/get/cancel/retry service and its routes, planning and rendering
(OpenAI or the fallback renderer), claims, finish events and the sweeper."""
