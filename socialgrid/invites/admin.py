from __future__ import annotations

from django.contrib import admin

from socialgrid.invites.models import InviteCode, InviteEmail, Referral


@admin.register(InviteCode)
class InviteCodeAdmin(admin.ModelAdmin):
    list_display = ["code", "user", "project", "created_at"]
    list_select_related = ["user", "project"]
    raw_id_fields = ["user", "project"]
    search_fields = ["code", "user__username"]
    readonly_fields = ["code", "created_at"]


@admin.register(Referral)
class ReferralAdmin(admin.ModelAdmin):
    list_display = ["recruit", "inviter", "project", "created_at", "counted_at"]
    list_select_related = ["recruit", "inviter", "project"]
    list_filter = [("counted_at", admin.EmptyFieldListFilter)]
    raw_id_fields = ["recruit", "inviter", "project", "invite_code"]
    search_fields = ["recruit__username", "inviter__username"]
    # Counting happens only when the recruit's work is validated (the credit_granted signal).
    readonly_fields = ["created_at", "counted_at"]
    date_hierarchy = "created_at"


@admin.register(InviteEmail)
class InviteEmailAdmin(admin.ModelAdmin):
    list_display = ["sender", "sent_at", "invite_code"]
    list_select_related = ["sender", "invite_code"]
    raw_id_fields = ["sender", "invite_code"]
    search_fields = ["sender__username"]
    date_hierarchy = "sent_at"

    def has_add_permission(self, request) -> bool:
        return False
