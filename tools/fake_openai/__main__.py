"""``python -m tools.fake_openai [--host H] [--port P]``: serve until SIGTERM or SIGINT."""

from tools.fake_openai.server import main

main()
