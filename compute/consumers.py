"""WebSocket consumers of live project pages. The volunteer protocol's socket
(``/ws/worker/``) is the first stop of the dispatch path: :mod:`compute.dispatch.socket`.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from channels.generic.websocket import AsyncWebsocketConsumer

from compute import notify
from compute.dbthreads import db
from compute.protocol import Close


class ProjectConsumer(AsyncWebsocketConsumer):
    """Live counters of a public project page (read-only; anyone may listen)."""

    async def connect(self) -> None:
        notify.bind_loop(asyncio.get_running_loop())
        slug = self.scope["url_route"]["kwargs"]["slug"]
        stats = await db(_public_project_stats)(slug)
        if stats is None:
            await self.close(code=Close.UNKNOWN_PROJECT)
            return
        self.group = notify.project_group(stats.pop("project_id"))
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        await self.send(text_data=json.dumps({"type": "stats", **stats}))

    async def disconnect(self, code: int) -> None:
        if hasattr(self, "group"):
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        # Listeners have nothing to say; anything sent is ignored.
        return

    async def project_stats(self, event: dict[str, Any]) -> None:
        await self.send(text_data=json.dumps({"type": "stats", **event["stats"]}))


def _public_project_stats(slug: str) -> dict[str, Any] | None:
    from compute.models import Project
    from compute.stats import project_stats

    project = Project.objects.filter(slug=slug, is_public=True).first()
    if project is None:
        return None
    return {"project_id": project.id, **project_stats(project)}
