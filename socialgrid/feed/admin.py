from __future__ import annotations

from django.contrib import admin

from socialgrid.feed.models import Badge, FeedItem


@admin.register(FeedItem)
class FeedItemAdmin(admin.ModelAdmin):
    # For moderation: find what someone published and remove it.
    list_display = ["created_at", "actor", "verb", "project"]
    list_filter = ["verb"]
    list_select_related = ["actor", "project"]
    search_fields = ["actor__username", "actor__email"]
    raw_id_fields = ["actor", "project"]
    date_hierarchy = "created_at"
    ordering = ["-created_at", "-id"]


@admin.register(Badge)
class BadgeAdmin(admin.ModelAdmin):
    list_display = ["user", "kind", "level", "awarded_at"]
    list_filter = ["kind"]
    list_select_related = ["user"]
    search_fields = ["user__username", "user__email"]
    raw_id_fields = ["user"]
    ordering = ["-awarded_at"]
