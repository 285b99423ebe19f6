"""Issue 16: the L7 comparison of a capture on the comparison page the engineer uses.

An HTTP flood captured at the victim (bots: one hostile user agent, no cookie, a short
header order) against the customer's rolling baseline capture (browsers with cookies).
The page shows each HTTP value's share of the attack's and the baseline's requests, the
attacker-written values as text, and "Propose rule" from one value opens the mitigation
form with the victim scope, the attack and the ticket.
"""

from __future__ import annotations

import random

import pytest
from playwright.sync_api import expect

from alerts.models import Attack
from tests.browser.support import PageProblems, login
from tests.traffic import gen
from tests.traffic.gen import ACK, PSH, SYN, T0, eth, ipv4, tcp
from tickets import services as ticket_services
from traffic.models import TrafficSample
from traffic.services import sample_parse

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

VICTIM = "203.0.113.10"  # in Acme's prefix: the victim scope comes from the customer's assets
BOT_UA = "<script>window.__pwned_ua=1</script>bot/1.0"
BROWSER_UA = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


def requests(n: int, rng: random.Random, *, net: str, ua: str, cookie: str | None, t0: float = T0) -> list:
    packets = []
    for i in range(n):
        headers = [("Host", "acme.example"), ("User-Agent", ua), ("Accept", "*/*")]
        if cookie:
            headers += [("Accept-Language", "en-US"), ("Cookie", cookie)]
        request = gen.http_request("GET", f"/p/{i % 7}" if cookie else "/", headers)
        src = f"{net}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
        syn = eth(ipv4(src, VICTIM, 6, tcp(20000 + i, 80, SYN, seq=0)))
        data = eth(ipv4(src, VICTIM, 6, tcp(20000 + i, 80, ACK | PSH, request, seq=1)))
        packets += [(t0 + i / 100, syn, len(syn)), (t0 + i / 100 + 0.001, data, len(data))]
    return packets


def capture(customer, tmp_path, packets, *, name, label, attack=None):
    path = tmp_path / name
    gen.write_pcap(path, packets)
    sample = TrafficSample.objects.create(customer=customer, name=name, kind="pcap", label=label, attack=attack)
    with path.open("rb") as fh:
        sample.original.save(name, fh)
    return sample_parse(sample_id=sample.pk)


def test_compare_page_shows_http_values_side_by_side_and_proposes_a_scoped_rule_from_one(
    page, page_problems: PageProblems, live_server, engineer, customer_a, tmp_path, settings
):
    settings.MEDIA_ROOT = tmp_path / "media"
    rng = random.Random(16)
    attack = Attack.objects.create(customer=customer_a, target=VICTIM, started_at=gen_now(), last_seen=gen_now())
    ticket = ticket_services.ticket_create(customer=customer_a, title="HTTP flood on acme.example", user=None)
    ticket.attacks.add(attack)
    capture(
        customer_a,
        tmp_path,
        requests(300, rng, net="81.2", ua=BROWSER_UA, cookie="session=abc; cart=1"),
        name="baseline.pcap",
        label="baseline",
    )
    sample = capture(
        customer_a,
        tmp_path,
        requests(400, rng, net="45.9", ua=BOT_UA, cookie=None),
        name="flood.pcap",
        label="attack",
        attack=attack,
    )
    assert sample.status == TrafficSample.Status.READY, sample.errors

    login(page, live_server, engineer)
    page.goto(f"{live_server.url}/traffic/{sample.pk}/compare/?ticket={ticket.number}")
    l7 = page.locator("#compare-l7")
    expect(l7).to_contain_text("400 HTTP requests and ClientHellos in the attack against 300 in the baseline")

    agents = l7.locator("details[data-attribute='http.user_agent']")
    bot_row = agents.locator("tr", has_text="bot/1.0")
    expect(bot_row).to_contain_text(BOT_UA)  # the attacker's text, shown as text
    expect(bot_row.locator("td").nth(1)).to_have_text("100% (400)")
    expect(bot_row.locator("td").nth(2)).to_have_text("0% (0)")
    expect(agents.locator("tr", has_text="Firefox/128.0").locator("td").nth(2)).to_have_text("100% (300)")
    cookies = l7.locator("details[data-attribute='cookie present']")
    expect(cookies.locator("tr", has_text="absent").locator("td").nth(1)).to_have_text("100% (400)")
    expect(cookies.locator("tr", has_text="present").locator("td").nth(2)).to_have_text("100% (300)")
    orders = l7.locator("details[data-attribute='header order']")
    expect(orders.locator("tr", has_text="host|user-agent|accept").first).to_be_visible()
    assert page.evaluate("() => window.__pwned_ua") is None

    if agents.get_attribute("open") is None:  # the most separating attributes are open, the others a click away
        agents.locator("summary").click()
    with page.expect_navigation():
        bot_row.get_by_role("link", name="Propose rule").click()
    expression = page.locator("#id_expression").input_value()
    # The customer's scope (h15a's prefill) around the value's rule, which carries the victim scope.
    assert expression.startswith('http.host in {"acme.example"} and ('), expression
    assert f'ip.dst in {{203.0.113.0/24}} and http.user_agent eq "{BOT_UA}")' in expression, expression
    assert page.locator("#id_ticket").input_value() == ticket.number
    assert page.locator("#id_attack").input_value() == str(attack.pk)
    page_problems.assert_clean("comparison page and propose form")


def gen_now():
    from django.utils import timezone

    return timezone.now()
