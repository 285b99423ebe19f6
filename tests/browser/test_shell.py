"""The console shell in a real browser: log in, see the shell, nothing broken, nothing blocked by the CSP."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from console.demo import seed_customers
from tests.browser.support import PageProblems, login

# Live-server tests are transactional; the flush after each would drop the roles that the
# data migration seeded, so the database is restored from its serialized state instead.
pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

NAVIGATION = ["Dashboard", "Customers", "Audit"]


@pytest.fixture
def demo_customers():
    return seed_customers()


def visit(page, live_server, path: str) -> None:
    response = page.goto(f"{live_server.url}{path}")
    assert response is not None and response.ok, f"{path} answered {response and response.status}"
    page.wait_for_load_state("networkidle")


def test_engineer_logs_in_through_the_form_and_sees_the_shell(page, live_server, engineer, demo_customers):
    login(page, live_server, engineer)

    assert urlsplit(page.url).path == "/"
    assert page.locator("h1").first.inner_text() == "SOC overview"
    nav = page.get_by_role("navigation", name="Main")
    for label in NAVIGATION:
        assert nav.get_by_role("link", name=label).is_visible(), f"navigation lacks {label}"
    assert page.locator(".who .username").inner_text() == engineer.get_username()

    nav.get_by_role("link", name="Customers").click()
    page.wait_for_url(f"{live_server.url}/customers/")
    rows = page.locator("#rows")
    for customer in demo_customers:
        assert rows.get_by_text(customer.name, exact=False).first.is_visible(), f"{customer.name} is not listed"


def test_console_pages_have_no_errors_and_no_csp_violations(
    page, page_problems: PageProblems, live_server, engineer, demo_customers
):
    login(page, live_server, engineer)
    bank = next(c for c in demo_customers if c.slug == "first-harbor-bank")
    for path in ["/", "/customers/", f"/customers/{bank.slug}/", "/audit/"]:
        page_problems.clear()
        visit(page, live_server, path)
        assert page.locator("header.topbar").is_visible(), f"{path} has no shell"
        page_problems.assert_clean(path)


def test_swagger_ui_renders_offline_without_csp_violations(page, page_problems: PageProblems, live_server, engineer):
    login(page, live_server, engineer)
    page_problems.clear()

    visit(page, live_server, "/api/docs/")
    # Swagger UI fills #swagger-ui from its bundle (served from /static/, no CDN) and the schema.
    page.locator("#swagger-ui .info .title").wait_for()
    assert "Shieldwall API" in page.locator("#swagger-ui .info .title").inner_text()
    assert page.locator("#swagger-ui .opblock").count() > 0, "Swagger UI shows no operations"
    page_problems.assert_clean("/api/docs/")


def test_anonymous_visit_lands_on_the_login_page(page, page_problems: PageProblems, live_server):
    page.goto(f"{live_server.url}/customers/")

    assert urlsplit(page.url).path == "/login/"
    assert "next=/customers/" in page.url
    assert page.locator("#id_username").is_visible()
    assert page.locator("#id_password").is_visible()
    page_problems.assert_clean("/login/")


def test_question_mark_opens_the_keyboard_help(page, page_problems: PageProblems, live_server, engineer):
    login(page, live_server, engineer)
    help_dialog = page.locator("#kbd-help")
    assert help_dialog.is_hidden()

    page.locator("body").click()  # away from any input: keys typed there are text, not shortcuts
    page.keyboard.press("?")
    help_dialog.wait_for(state="visible")
    assert "Keyboard" in help_dialog.inner_text()

    page.keyboard.press("Escape")
    help_dialog.wait_for(state="hidden")
    page_problems.assert_clean("keyboard help")


def test_customer_search_filters_the_list_in_place(
    page, page_problems: PageProblems, live_server, engineer, demo_customers
):
    login(page, live_server, engineer)
    visit(page, live_server, "/customers/")
    page.keyboard.press("/")  # the global search key focuses the filter box

    with page.expect_response(lambda r: "/customers/?" in r.url and r.request.headers.get("hx-request") == "true"):
        page.keyboard.type("harbor")
    rows = page.locator("#rows tbody tr")
    rows.first.wait_for()
    page.wait_for_function("document.querySelectorAll('#rows tbody tr').length === 1")
    assert "First Harbor Bank" in rows.first.inner_text()
    assert "q=harbor" in urlsplit(page.url).query, "the filter is not kept in the address bar"
    page_problems.assert_clean("customer search")
