"""The WebSocket frame limit, enforced by daphne itself.

Daphne hands the application whole messages of up to 1 MiB by default and,
for a bigger one, drops the TCP connection without a close frame (autobahn's
failByDrop); the application cannot answer 1009 either, as autobahn refuses
any close code an application sends other than 1000 and 3000-4999. So the
server is told the real limit (FRAME_MAX_BYTES): a bigger frame is refused
from its header, before its payload is read into memory, with a proper
close frame 1009 ("message too big"), and the process carries on.

portal/asgi.py installs this into daphne's command line, which builds its
Server after importing the application, so every way of starting daphne
with portal.asgi (runportal, the tests' LiveServer, a production unit file)
gets it.
"""

import sys
from typing import Any

FRAME_MAX_BYTES = 64 * 1024


def frame_limited_server_class() -> type:
    from daphne.server import Server

    class FrameLimitedServer(Server):  # type: ignore[misc]
        """daphne's Server with WebSocket messages and frames limited to
        FRAME_MAX_BYTES, refused with close 1009 rather than a dropped
        connection."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            for option in ("websocket_max_message_size", "websocket_max_frame_size"):
                kwargs[option] = min(int(kwargs.get(option) or FRAME_MAX_BYTES), FRAME_MAX_BYTES)
            super().__init__(*args, **kwargs)

        @property
        def ws_factory(self) -> Any:
            return self._frame_limited_ws_factory

        @ws_factory.setter
        def ws_factory(self, factory: Any) -> None:
            # Set in Server.run(), before any connection is accepted; the
            # options daphne sets next leave failByDrop alone.
            factory.setProtocolOptions(failByDrop=False)
            self._frame_limited_ws_factory = factory

    return FrameLimitedServer


def daphne_frame_limit_install() -> None:
    """When this process was started by daphne's command line, make it build
    a FrameLimitedServer. Elsewhere (tests with WebsocketCommunicator,
    another ASGI server) nothing is imported or changed: the consumer checks
    the limit too."""
    cli = sys.modules.get("daphne.cli")
    if cli is None:
        return
    interface = cli.CommandLineInterface
    if getattr(interface.server_class, "__name__", "") != "FrameLimitedServer":
        interface.server_class = frame_limited_server_class()
