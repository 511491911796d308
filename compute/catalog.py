"""What the scheduler needs to know about apps, cached in the process for a few seconds.

The lease path runs for every volunteer request; reading apps, their current version and
their project's policy from the database each time would double its queries. Edits reach
every process within ``TTL`` seconds, and at once in the process that made them: an edit
made while another thread is loading the catalog leaves what that thread read stale, so
the next look loads again; so does a load between the edit and its commit.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from django.db import DEFAULT_DB_ALIAS, transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from compute.models import App, AppVersion, Project

TTL = 5.0


@dataclass(frozen=True)
class AppInfo:
    id: int
    name: str
    project_id: int
    project_slug: str
    project_active: bool
    homogeneous_redundancy: bool
    adaptive_replication: bool
    spot_check_rate: float
    min_cores: int
    min_memory_mb: int
    needs_wasm: bool
    needs_simd: bool
    needs_threads: bool
    min_quorum: int
    target_nresults: int
    daily_quota_per_core: int
    max_deadline_extension: int
    version_id: int | None
    version: int | None
    kernel_url: str
    kernel_sha256: str
    wasm_url: str
    wasm_sha256: str

    @property
    def dispatchable(self) -> bool:
        return self.project_active and self.version_id is not None


class Catalog:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._apps: dict[int, AppInfo] = {}
        self._loaded_at = 0.0
        self._generation = 0  # counts invalidations

    def _load(self) -> dict[int, AppInfo]:
        latest: dict[int, AppVersion] = {}
        for version in AppVersion.objects.filter(deprecated=False).defer("kernel", "wasm"):
            current = latest.get(version.app_id)
            if current is None or version.version > current.version:
                latest[version.app_id] = version
        apps = {}
        for app in App.objects.select_related("project"):
            v = latest.get(app.id)
            p = app.project
            apps[app.id] = AppInfo(
                id=app.id,
                name=app.name,
                project_id=p.id,
                project_slug=p.slug,
                project_active=p.is_active,
                homogeneous_redundancy=app.homogeneous_redundancy,
                adaptive_replication=app.adaptive_replication,
                spot_check_rate=app.spot_check_rate,
                min_cores=app.min_cores,
                min_memory_mb=app.min_memory_mb,
                needs_wasm=app.needs_wasm,
                needs_simd=app.needs_simd,
                needs_threads=app.needs_threads,
                min_quorum=p.min_quorum,
                target_nresults=p.target_nresults,
                daily_quota_per_core=p.daily_quota_per_core,
                max_deadline_extension=p.max_deadline_extension,
                version_id=v.id if v else None,
                version=v.version if v else None,
                kernel_url=v.get_kernel_url() if v else "",
                kernel_sha256=v.kernel_sha256 if v else "",
                wasm_url=v.get_wasm_url() if v else "",
                wasm_sha256=v.wasm_sha256 if v else "",
            )
        return apps

    def apps(self) -> dict[int, AppInfo]:
        now = time.monotonic()
        if now - self._loaded_at > TTL:
            generation = self._generation
            apps = self._load()
            with self._lock:
                self._apps = apps
                # Invalidated while loading: what was read may predate the edit.
                self._loaded_at = now if generation == self._generation else 0.0
            return apps
        return self._apps

    def get(self, app_id: int) -> AppInfo | None:
        return self.apps().get(app_id)

    def for_projects(self, project_ids: set[int]) -> list[AppInfo]:
        return [a for a in self.apps().values() if a.project_id in project_ids and a.dispatchable]

    def active_project(self, slug: str) -> int | None:
        """The id of the active project with this slug, where the catalog knows it (a
        project with an app); None says to ask the database."""
        for app in self.apps().values():
            if app.project_slug == slug and app.project_active:
                return app.project_id
        return None

    def invalidate(self) -> None:
        with self._lock:
            self._generation += 1
            self._loaded_at = 0.0


catalog = Catalog()


@receiver([post_save, post_delete], sender=App)
@receiver([post_save, post_delete], sender=AppVersion)
@receiver([post_save, post_delete], sender=Project)
def _invalidate(using: str = DEFAULT_DB_ALIAS, **kwargs: object) -> None:
    # Now, and again once the edit has committed: a load between the two (another thread
    # of this process) reads the database as it was before the edit.
    catalog.invalidate()
    transaction.on_commit(catalog.invalidate, using=using)
