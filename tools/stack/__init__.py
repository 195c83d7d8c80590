"""The local cloud stack: PostgreSQL, the Pub/Sub and GCS emulators, the finalize relay and
scheduler, the token issuer and every function of infra/functions.toml, on 127.0.0.1.

Modules: `config` (ports, paths), `procs` (pid files, process groups), `services` (what runs),
`up`, `control` (down, status, logs, token, env), `emulator` (finding it), `pubsub` (wiring),
`keys`, `issuer`, `events` (the finalize CloudEvent), `relay`, `scheduler`.
"""
