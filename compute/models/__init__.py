from compute.models.credit_totals import CreditTotals
from compute.models.host import Host, HostApp, Volunteer
from compute.models.project import App, AppVersion, Comparator, CreditPolicy, Membership, Project
from compute.models.work import AssimilatedOutput, Batch, CreditEntry, Replica, WorkUnit

__all__ = [
    "App",
    "AppVersion",
    "AssimilatedOutput",
    "Batch",
    "Comparator",
    "CreditEntry",
    "CreditPolicy",
    "CreditTotals",
    "Host",
    "HostApp",
    "Membership",
    "Project",
    "Replica",
    "Volunteer",
    "WorkUnit",
]
