import gc
import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings.local")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from chats.ws_auth import websocket_stack  # noqa: E402
from chats.ws_server import daphne_frame_limit_install  # noqa: E402
from common.sqlite_checkpoint import checkpointer_start  # noqa: E402
from portal.routing import websocket_urlpatterns  # noqa: E402

# Under daphne: frames over 64 KB refused with close 1009 by the server itself.
daphne_frame_limit_install()
# On SQLite, WAL checkpoints run in a thread of their own, not in the commit
# of whichever chat message crosses SQLite's threshold.
checkpointer_start()

# websocket_stack: AllowedHostsOriginValidator's Origin rule (a handshake
# without Origin is admitted by token only), AuthMiddlewareStack, then the
# API token (header or first frame).
application = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": websocket_stack(URLRouter(websocket_urlpatterns)),
    }
)

# What starting made (modules, settings, URL patterns, the ORM's metadata)
# lives as long as the process: frozen out of the collector's reach, so that
# each full collection does not walk it again. Full collections of an
# unfrozen Django process take milliseconds and land on whatever delivery is
# under way (the chat benchmark's p99, bench/README.md).
gc.freeze()
# The youngest generation is collected every 10,000 allocations rather than
# Python's 700: under load the chat send path (rows, model instances,
# coroutines, frames) made the collector run very often, and with this a
# daphne process delivered 6-8 % more in the chat benchmark's throughput run
# (bench/README.md).
gc.set_threshold(10_000, 10, 10)
