"""Demo customers and users for a first look at the console. Idempotent."""

from __future__ import annotations

import os
import secrets
from importlib import import_module

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import transaction

from console import roles
from console.models import Asset, Customer, Profile

CUSTOMERS = [
    {
        "slug": "martas-kitchen",
        "name": "Marta's Kitchen (blog)",
        "plan": Customer.Plan.FREE,
        "timezone": "Europe/Lisbon",
        "contacts": [{"name": "Marta Sousa", "email": "marta@martas-kitchen.example", "role": "owner"}],
        "assets": [(Asset.Kind.ZONE, "martas-kitchen.example", "WordPress blog")],
    },
    {
        "slug": "northwind-shop",
        "name": "Northwind Shop",
        "plan": Customer.Plan.PRO,
        "timezone": "America/Chicago",
        "contacts": [
            {"name": "Dev Patel", "email": "ops@northwind.example", "phone": "+1 312 555 0142", "role": "ops"}
        ],
        "assets": [(Asset.Kind.ZONE, "shop.northwind.example", "storefront and checkout")],
    },
    {
        "slug": "helio-analytics",
        "name": "Helio Analytics",
        "plan": Customer.Plan.BUSINESS,
        "timezone": "Europe/Berlin",
        "contacts": [
            {"name": "Jonas Richter", "email": "sre@helio.example", "phone": "+49 30 5550 1234", "role": "SRE lead"},
            {"name": "Security", "email": "security@helio.example", "role": "security", "reports": True},
        ],
        "assets": [
            (Asset.Kind.ZONE, "app.helio.example", "SaaS dashboard"),
            (Asset.Kind.ZONE, "api.helio.example", "public API"),
        ],
    },
    {
        "slug": "first-harbor-bank",
        "name": "First Harbor Bank",
        "plan": Customer.Plan.ENTERPRISE,
        "timezone": "America/New_York",
        "contacts": [
            {"name": "Alicia Moreno", "email": "noc@firstharbor.example", "phone": "+1 212 555 0199", "role": "NOC"},
            {"name": "CISO office", "email": "ciso@firstharbor.example", "role": "CISO", "reports": True},
        ],
        "assets": [
            (Asset.Kind.ZONE, "firstharbor.example", "online banking"),
            (Asset.Kind.PREFIX, "203.0.113.0/24", "Magic Transit: data centre east"),
            (Asset.Kind.PREFIX, "198.51.100.0/24", "Magic Transit: data centre west"),
            (Asset.Kind.PREFIX, "2001:db8:100::/48", "Magic Transit: IPv6"),
            (Asset.Kind.SPECTRUM, "sftp.firstharbor.example:22", "Spectrum: partner SFTP"),
            (Asset.Kind.SPECTRUM, "fix.firstharbor.example:9876", "Spectrum: FIX trading gateway"),
        ],
    },
]

USERS = [
    ("vera", roles.VIEWER, None),
    ("eli", roles.ENGINEER, None),
    ("sam", roles.SENIOR_ENGINEER, None),
    ("sofia", roles.SENIOR_ENGINEER, None),
    ("harbor-viewer", roles.CUSTOMER_VIEWER, "first-harbor-bank"),
]


def demo_password() -> tuple[str, bool]:
    """The demo password: DEMO_ADMIN_PASSWORD, else one generated once and kept in var/."""
    if password := os.environ.get("DEMO_ADMIN_PASSWORD"):
        return password, False
    path = settings.VAR_DIR / "demo_admin_password"
    if path.exists():
        return path.read_text().strip(), False
    password = secrets.token_urlsafe(12)
    path.write_text(password)
    path.chmod(0o600)
    return password, True


@transaction.atomic
def seed_customers() -> list[Customer]:
    customers = []
    for spec in CUSTOMERS:
        customer, _ = Customer.objects.update_or_create(
            slug=spec["slug"],
            defaults={k: spec[k] for k in ("name", "plan", "timezone", "contacts")},
        )
        for kind, value, description in spec["assets"]:
            Asset.objects.update_or_create(
                kind=kind, value=value, defaults={"customer": customer, "description": description}
            )
        customers.append(customer)
    return customers


@transaction.atomic
def seed_users(password: str) -> None:
    User = get_user_model()
    admin, created = User.objects.get_or_create(username="admin", defaults={"email": "admin@shieldwall.invalid"})
    if created or not admin.has_usable_password() or not admin.check_password(password):
        admin.set_password(password)
    admin.is_staff = admin.is_superuser = True
    admin.save()
    admin.groups.add(Group.objects.get(name=roles.ADMIN))
    for username, role, customer_slug in USERS:
        user, created = User.objects.get_or_create(
            username=username, defaults={"email": f"{username}@shieldwall.invalid"}
        )
        if created:
            user.set_password(password)
            user.save()
        user.groups.set([Group.objects.get(name=role)])
        Profile.objects.update_or_create(
            user=user,
            defaults={"customer": Customer.objects.get(slug=customer_slug) if customer_slug else None},
        )


def seed_demo(*, stdout=None) -> dict:
    """Customers, users in every role, then whatever each domain app adds (feeds, alerts...)."""
    password, generated = demo_password()
    customers = seed_customers()
    seed_users(password)
    summary = {"customers": len(customers), "password": password, "generated": generated}
    for app in ("alerts", "tickets", "traffic", "mitigations", "reports"):
        try:
            module = import_module(f"{app}.demo")
        except ModuleNotFoundError as exc:
            if exc.name not in (f"{app}.demo", app):
                raise
            continue
        summary[app] = module.seed(stdout=stdout)
    return summary
