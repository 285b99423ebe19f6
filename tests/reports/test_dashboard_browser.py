"""In a real browser: the SOC dashboard's charts are still drawn after the cards refresh."""

from __future__ import annotations

import pytest

from tests.browser.support import PageProblems, login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DRAWN = "() => [...document.querySelectorAll('#soc-overview [data-chart]')].map(el => !!el.querySelector('.main-svg'))"
ALL_DRAWN = """(stamp) => {
  const charts = [...document.querySelectorAll('#soc-overview [data-chart]')];
  const note = document.querySelector('#soc-overview p.muted.small');
  return charts.length > 0 && charts.every(el => !!el.querySelector('.main-svg'))
    && (stamp === null || note.dataset.refreshed !== stamp);
}"""


def test_soc_dashboard_charts_survive_two_refreshes(
    page, page_problems: PageProblems, live_server, engineer, incident, settings
):
    settings.DASHBOARD_REFRESH_SECONDS = 1
    incident["attack"].__class__.objects.filter(pk=incident["attack"].pk).update(ongoing=True, ended_at=None)

    login(page, live_server, engineer)
    page.goto(f"{live_server.url}/")
    page.wait_for_function(ALL_DRAWN, arg=None)
    before = page.evaluate(DRAWN)
    assert len(before) >= 3, before  # ongoing attacks, alert rate by severity and by layer at least

    for n in range(2):
        stamp = page.locator("#soc-overview p.muted.small").first.get_attribute("data-refreshed")
        with page.expect_response(lambda r: "fragment=1" in r.url and r.status == 200):
            pass
        # The swapped-in cards settle, then every chart in them must be drawn again.
        page.wait_for_function(ALL_DRAWN, arg=stamp)
        after = page.evaluate(DRAWN)
        assert after == before, f"after refresh {n + 1}: {after}"
        assert page.locator("#soc-overview .js-plotly-plot").count() == len(before)
    page_problems.assert_clean("SOC dashboard")
