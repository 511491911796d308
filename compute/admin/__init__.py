"""The operator's console: every engine model, the actions BOINC's ops pages offer, and a
queue dashboard.

State fields (replica states, error masks, assimilation, batch counters, credit) are
read-only here: they move only through the domain functions, which the actions call.
"""

from compute.admin import hosts, projects, work

__all__ = ["hosts", "projects", "work"]
