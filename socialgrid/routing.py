"""Every WebSocket route of the platform."""

from compute.routing import websocket_urlpatterns as compute_routes
from socialgrid.feed.routing import websocket_urlpatterns as feed_routes

websocket_urlpatterns = [*compute_routes, *feed_routes]
