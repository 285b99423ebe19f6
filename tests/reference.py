"""Reference rows that data migrations seed (roles, SLA policies, message templates, the allowlist).

A transactional test (live server, races) ends with a flush that empties every table, and
the data migrations do not run again. The tests put the same rows back through the same
seed functions, so no test depends on which test ran before it.
"""

from importlib import import_module

from django.apps import apps

SEEDS = [
    ("console.migrations.0002_roles_and_audit_guard", "seed_roles"),
    ("tickets.migrations.0002_seed_sla_and_templates", "seed"),
    ("mitigations.migrations.0002_seed_global_allowlist", "seed"),
]


def ensure_reference_data() -> None:
    from django.contrib.auth.models import Group

    if Group.objects.filter(name="Customer viewer").exists():
        return
    for module, function in SEEDS:
        getattr(import_module(module), function)(apps, None)
