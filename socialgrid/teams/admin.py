from __future__ import annotations

from django.contrib import admin

from socialgrid.teams.models import Challenge, Team, TeamMember

CREDIT_FIELDS = ("total_credit", "rac", "rac_time")


class TeamMemberInline(admin.TabularInline):
    model = TeamMember
    raw_id_fields = ("user",)
    readonly_fields = ("joined_at", "credit")
    extra = 0


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "founder", "total_credit", "rac", "created_at")
    search_fields = ("name", "slug")
    raw_id_fields = ("founder",)
    # Credit comes only from the ledger fold; editing it here would desynchronise the two.
    readonly_fields = (*CREDIT_FIELDS, "created_at")
    inlines = [TeamMemberInline]


@admin.register(Challenge)
class ChallengeAdmin(admin.ModelAdmin):
    list_display = ("name", "starts_at", "ends_at", "created_by")
    search_fields = ("name", "slug")
    raw_id_fields = ("created_by", "teams")
