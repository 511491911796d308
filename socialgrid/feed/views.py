from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from compute.credit_display import format_credit
from compute.models import Volunteer
from socialgrid.feed import badges as rules
from socialgrid.feed.models import BadgeKind
from socialgrid.feed.sentences import render_items
from socialgrid.feed.timeline import Cursor, InvalidCursor, feed_page


@login_required
@require_GET
def feed(request: HttpRequest) -> HttpResponse:
    before, error, status = None, "", 200
    if "before" in request.GET:
        try:
            before = Cursor.decode(request.GET["before"])
        except InvalidCursor:
            # A mangled "older" link: say so and show the newest page instead.
            error, status = "That page link is not valid; here is your latest activity.", 400
    page = feed_page(request.user, before)
    context = {
        "items": render_items(page.items),
        "older": page.older.encode() if page.older else "",
        "is_first": before is None,
        "error": error,
    }
    return render(request, "feed/feed.html", context, status=status)


@login_required
@require_GET
def badges(request: HttpRequest) -> HttpResponse:
    volunteer = Volunteer.objects.filter(user=request.user).first()
    total = volunteer.total_credit if volunteer else 0.0
    rac = volunteer.rac if volunteer else 0.0
    held = rules.badges_for(request.user)
    ladders = rules.ladders_for(request.user, held)
    next_rung = next((r for r in ladders[BadgeKind.CREDIT] if r.level > total), None)
    ranking = rules.cached_rac_thresholds() or {}
    thresholds = ranking.get("thresholds", {})
    context = {
        "badges": held,
        "credit_rungs": ladders[BadgeKind.CREDIT],
        "rac_rungs": [
            (rung, format_credit(thresholds[rung.level]) if rung.level in thresholds else "")
            for rung in ladders[BadgeKind.RAC_TOP]
        ],
        "recruit_rungs": ladders[BadgeKind.RECRUITS],
        "total": format_credit(total),
        "rac": format_credit(rac),
        "next_rung": next_rung,
        "to_go": format_credit(next_rung.level - total) if next_rung else "",
        "ranked": ranking.get("ranked"),
        "ranked_at": ranking.get("at"),
    }
    return render(request, "feed/my_badges.html", context)
