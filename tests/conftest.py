"""Personas created once per test: an engineer, a senior engineer, a customer viewer, an outsider.

Each permission test has its obvious negative at hand (as healthchecks' alice/bob/charlie).
"""

import os

import pytest
from rest_framework.test import APIClient

from console import roles
from tests.browser.support import (  # noqa: F401 - fixtures and hook for every folder's browser tests
    browser,
    page,
    page_problems,
    pytest_collection_modifyitems,
)
from tests.factories import PASSWORD, AssetFactory, CustomerFactory, UserFactory  # noqa: F401 - PASSWORD for tests

# Playwright's sync API runs an event loop in the test thread; the ORM calls the tests make
# around it are still synchronous and safe.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture
def customer_a(db):
    customer = CustomerFactory(slug="acme", name="Acme Corp", plan="enterprise", timezone="America/New_York")
    AssetFactory(customer=customer, kind="zone", value="acme.example")
    AssetFactory(customer=customer, kind="prefix", value="203.0.113.0/24")
    return customer


@pytest.fixture
def customer_b(db):
    customer = CustomerFactory(slug="globex", name="Globex", plan="pro", timezone="Europe/Paris")
    AssetFactory(customer=customer, kind="zone", value="globex.example")
    return customer


@pytest.fixture
def engineer(db):
    return UserFactory(username="eli", role=roles.ENGINEER)


@pytest.fixture
def viewer(db):
    return UserFactory(username="vera", role=roles.VIEWER)


@pytest.fixture
def senior(db):
    return UserFactory(username="sam", role=roles.SENIOR_ENGINEER)


@pytest.fixture
def senior2(db):
    return UserFactory(username="sofia", role=roles.SENIOR_ENGINEER)


@pytest.fixture
def admin_user(db):
    user = UserFactory(username="root-admin", role=roles.ADMIN)
    user.is_superuser = user.is_staff = True
    user.save()
    return user


@pytest.fixture
def customer_viewer(db, customer_a):
    return UserFactory(username="acme-viewer", role=roles.CUSTOMER_VIEWER, customer=customer_a)


@pytest.fixture
def outsider(db):
    return UserFactory(username="mallory")


def _client_for(client, user):
    client.force_login(user)
    return client


@pytest.fixture
def engineer_client(client, engineer):
    return _client_for(client, engineer)


@pytest.fixture
def api(db):
    return APIClient()


@pytest.fixture
def api_as():
    def make(user):
        c = APIClient()
        c.force_authenticate(user)
        return c

    return make


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Throttles and debounces live in the cache: no test inherits another's."""
    from django.core.cache import cache

    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _reference_data(request):
    """Roles, SLA policies, templates and the allowlist exist in every test that uses the database."""
    names = set(request.fixturenames)
    marker = request.node.get_closest_marker("django_db")
    if not (marker or names & {"db", "transactional_db", "live_server"}):
        return
    transactional = bool(names & {"transactional_db", "live_server"}) or bool(
        marker and marker.kwargs.get("transaction")
    )
    request.getfixturevalue("transactional_db" if transactional else "db")
    from tests.reference import ensure_reference_data

    ensure_reference_data()


@pytest.fixture(autouse=True)
def _two_factor(request, settings):
    """Two-factor is on for browser tests (they log in through the form and pass a TOTP code).

    Django's test client ``force_login`` cannot pass a code, so the other tests run with it
    off; tests of two-factor itself turn it on. tests/console/test_two_factor.py checks that
    the settings default it on.
    """
    settings.TWO_FACTOR_REQUIRED = request.node.get_closest_marker("browser") is not None


def pytest_terminal_summary(terminalreporter) -> None:  # pytest's hook
    from tests.shared import FIGURES

    for title, text in FIGURES:
        terminalreporter.section(title)
        terminalreporter.write_line(text)
