"""A volunteer without a browser: ``manage.py volunteer`` and the tests drive the protocol
with the apps' Python references (see ``compute.headless.volunteer``)."""

from __future__ import annotations

from compute.headless.summary import Summary
from compute.headless.volunteer import HeadlessVolunteer

__all__ = ["HeadlessVolunteer", "Summary"]
