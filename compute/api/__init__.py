"""Project owners: the REST API (django-ninja), API tokens, the command-line client, the
owner's dashboard and the statistics export for third-party stats sites.

See docs/project-owners.md and docs/stats-export.md.
"""
