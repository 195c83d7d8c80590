"""A local OpenAI-compatible fake server for tests, benchmarks and the local stack.

It answers the real ``openai`` client (pointed at it through ``base_url`` or
``OPENAI_BASE_URL``) on ``/v1/chat/completions`` (chat.py), ``/v1/images/generations`` and
``/v1/images/edits`` (images.py) and ``/v1/moderations`` (moderations.py) with the real API's
response and error shapes, and renders cheap gradients of the requested size and format.

Faults come two ways. The control API, for a test that owns the fake (the same methods
exist on ``FakeOpenAI``, server.py):

* ``POST /_fake/config`` ``{"latency_seconds": 2.0}``: latency added to every model call;
* ``POST /_fake/faults`` ``[{"endpoint": "images"|"chat"|"moderations"|"any", "kind": "http"|
  "moderation_blocked"|"timeout", "status": 400|429|500|503, "times": 1,
  "retry_after": 0.1, "seconds": 3.0}]``: faults queued in order, each answered to the next
  ``times`` calls of its endpoint (a timeout sleeps ``seconds``, then answers);
* ``GET /_fake/requests``: the recorded model calls; ``GET /_fake/stats``: model calls in
  flight now and at most since the last reset (``{"in_flight": n, "peak_in_flight": m}``);
  ``POST /_fake/reset``: forget all.

Markers in a prompt, for callers sharing one fake process: in an image prompt
``[fake:moderation]`` (400 ``moderation_blocked``), ``[fake:500]``, ``[fake:429]`` (every
attempt) and ``[fake:slow=SECONDS]``; in a text sent to moderation ``[fake:flag]`` or
``[fake:flag=harassment,violence]`` (flagged). The chat answer keeps the user's text, so a
marker given to the prompt enhancer reaches the calls after it; ``[fake:flag-enhanced]``
becomes ``[fake:flag]`` there (the enhanced prompt is flagged, the user's is not).

Run: ``python -m tools.fake_openai --host 127.0.0.1 --port 8790``.
Use: ``with FakeOpenAI() as fake: OpenAI(base_url=fake.base_url, api_key="test")``.
"""

from tools.fake_openai.server import FakeOpenAI

__all__ = ["FakeOpenAI"]
