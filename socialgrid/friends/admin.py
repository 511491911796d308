from __future__ import annotations

from django.contrib import admin

from socialgrid.friends.models import FriendRequest, Friendship


@admin.register(Friendship)
class FriendshipAdmin(admin.ModelAdmin):
    list_display = ["user_low", "user_high", "created_at"]
    list_select_related = ["user_low", "user_high"]
    raw_id_fields = ["user_low", "user_high"]
    search_fields = ["user_low__username", "user_high__username"]
    date_hierarchy = "created_at"


@admin.register(FriendRequest)
class FriendRequestAdmin(admin.ModelAdmin):
    list_display = ["from_user", "to_user", "state", "created_at", "responded_at"]
    list_filter = ["state"]
    list_select_related = ["from_user", "to_user"]
    raw_id_fields = ["from_user", "to_user"]
    search_fields = ["from_user__username", "to_user__username"]
    date_hierarchy = "created_at"
