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

import asyncio
import sys
import types
from collections import deque
from functools import partial
from typing import Any

FRAME_MAX_BYTES = 64 * 1024


class LazyQueue:
    """What daphne needs of asyncio.Queue for a connection's input — the
    protocol's put_nowait, the application's get (one caller at a time) —
    holding nothing while no message waits."""

    __slots__ = ("items", "waiter")

    def __init__(self) -> None:
        self.items: deque[Any] | None = None
        self.waiter: asyncio.Future[None] | None = None

    def put_nowait(self, item: Any) -> None:
        if self.items is None:
            self.items = deque()
        self.items.append(item)
        waiter, self.waiter = self.waiter, None
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def get(self) -> Any:
        while not self.items:
            self.waiter = asyncio.get_running_loop().create_future()
            await self.waiter
        item = self.items.popleft()
        if not self.items:
            self.items = None
        return item


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

        def create_application(self, protocol: Any, scope: dict[str, Any]) -> Any:
            """daphne's, with a LazyQueue for the connection's input: an idle
            WebSocket holds an empty queue for hours, and asyncio.Queue's
            empty queue is four deques, about 3 KB."""
            assert "application_instance" not in self.connections[protocol]
            queue = LazyQueue()
            scope.setdefault("asgi", {"version": "3.0"})
            instance = self.application(scope=scope, receive=queue.get, send=partial(self.handle_reply, protocol))
            if protocol not in self.connections:
                return None
            self.connections[protocol]["application_instance"] = asyncio.ensure_future(instance)
            return queue

        @property
        def ws_factory(self) -> Any:
            return self._frame_limited_ws_factory

        @ws_factory.setter
        def ws_factory(self, factory: Any) -> None:
            # Set in Server.run(), before any connection is accepted; the
            # options daphne sets next leave failByDrop alone.
            factory.setProtocolOptions(failByDrop=False)
            factory.protocol = shared_options_protocol_class(factory.protocol)
            self._frame_limited_ws_factory = factory

    return FrameLimitedServer


def shared_options_protocol_class(base: type) -> type:
    class SharedOptionsProtocol(base):  # type: ignore[misc, valid-type]
        def _connectionMade(self) -> None:
            cls = type(self)
            if not cls.__dict__.get("_options_shared"):
                for name in self.CONFIG_ATTRS:
                    value = getattr(self.factory, name)
                    # A function stays a plain value, not a method of the protocol.
                    setattr(cls, name, staticmethod(value) if isinstance(value, types.FunctionType) else value)
                cls._options_shared = True
            super()._connectionMade()

    return SharedOptionsProtocol


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
