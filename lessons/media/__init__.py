"""The lessons' media server: a selective forwarding unit on aiortc that runs
in media worker processes and is driven over the channel layer
(docs/protocol.md, "Media worker"). It knows nothing of Django models.

- protocol: channel names, room placement, command and event shapes
- ice: ICE servers and time-limited TURN credentials
- forwarding: encoded-frame forwarding on aiortc's internals
- sfu: rooms, peers and their peer connections
- worker: the worker process (`python -m lessons.media`)
"""
