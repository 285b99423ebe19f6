"""Attack and alert pages show source countries and ASNs (issue 14): the sender's where it
named them, else offline geolocation of the source addresses, said so; "unknown" without sources."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.reports.conftest import T0, make_alert, make_attack

pytestmark = pytest.mark.django_db


@pytest.fixture
def feed(db):
    from alerts.models import Feed

    feed = Feed(name="FastNetMon", slug="fnm", format="fastnetmon")
    feed.set_secret()
    feed.save()
    return feed


def attack_places_html(client, attack) -> str:
    """What the attack page loads into its "Source countries and ASNs" card (checked below)."""
    page = client.get(attack.get_absolute_url()).content.decode()
    url = reverse("report-attack-places", args=[attack.pk])
    assert f'hx-get="{url}"' in page
    return client.get(url).content.decode()


def alert_places_html(client, alert) -> str:
    page = client.get(reverse("alert-detail", args=[alert.pk])).content.decode()
    url = reverse("report-alert-places", args=[alert.pk])
    assert f'hx-get="{url}"' in page.split('id="alert-places"', 1)[1].split(">", 1)[0]
    return client.get(url).content.decode()


def test_attack_page_places_unnamed_sources_and_says_how(engineer_client, feed, customer_a):
    attack = make_attack(customer_a, vectors=("dns_amplification",), alerts=2)
    make_alert(feed, customer_a, attack, 1, vector="dns_amplification", at=T0, ips=["8.8.8.8", "9.9.9.9"])
    make_alert(feed, customer_a, attack, 2, vector="dns_amplification", at=T0, ips=["193.0.6.139"])
    html = attack_places_html(engineer_client, attack)
    places = html.split('id="attack-places"', 1)[1].split("</div>", 1)[0]
    countries = places.split('id="attack-countries"', 1)[1].split("</table>", 1)[0]
    assert "<td>NL</td><td>1</td>" in countries and "<td>US</td><td>1</td>" in countries
    asns = places.split('id="attack-asns"', 1)[1].split("</table>", 1)[0]
    assert "GOOGLE" in asns and "QUAD9-AS-1" in asns
    assert "2 alerts named no country: placed by offline geolocation of source addresses; spoofed sources mislead." in (
        places
    )


def test_attack_page_keeps_the_senders_country_and_says_unknown_without_sources(engineer_client, feed, customer_a):
    named = make_attack(customer_a, vectors=("syn_flood",), alerts=1)
    make_alert(feed, customer_a, named, 1, vector="syn_flood", at=T0, ips=["8.8.8.8"], countries=["BR"], asns=[64500])
    html = attack_places_html(engineer_client, named)
    places = html.split('id="attack-places"', 1)[1].split("</div>", 1)[0]
    assert "<td>BR</td>" in places and "<td>AS64500</td>" in places
    assert "US" not in places.split('id="attack-countries"', 1)[1].split("</table>", 1)[0]
    assert "placed by offline geolocation" not in places

    bare = make_attack(customer_a, target="203.0.113.11", vectors=("syn_flood",), alerts=1)
    make_alert(feed, customer_a, bare, 2, vector="syn_flood", at=T0, ips=[])
    html = attack_places_html(engineer_client, bare)
    places = html.split('id="attack-places"', 1)[1].split("</div>", 1)[0]
    assert "unknown: no source addresses" in places and "attack-countries" not in places


def test_alert_page_places_its_sources_names_the_senders_and_says_unknown(engineer_client, feed, customer_a):
    attack = make_attack(customer_a, vectors=("dns_amplification",), alerts=3)
    located = make_alert(feed, customer_a, attack, 1, vector="dns_amplification", at=T0, ips=["8.8.8.8", "193.0.6.139"])
    places = alert_places_html(engineer_client, located)
    assert "NL, US" in places and "GOOGLE" in places
    assert "Placed by offline geolocation of 2 source addresses (the sender named none); spoofed sources mislead." in (
        places
    )

    named = make_alert(
        feed, customer_a, attack, 2, vector="dns_amplification", at=T0, ips=["8.8.8.8"], countries=["de"], asns=[3320]
    )
    places = alert_places_html(engineer_client, named)
    assert "<dd>DE</dd>" in places and "<dd>AS3320</dd>" in places and "As the sender reported them." in places

    bare = make_alert(feed, customer_a, attack, 3, vector="dns_amplification", at=T0, ips=[])
    places = alert_places_html(engineer_client, bare)
    assert "unknown: the alert names no source addresses" in places


def test_places_are_refused_where_the_pages_are(client, customer_viewer, feed, customer_a, customer_b):
    """The fragments are guarded like the staff pages they load into: a customer's viewer gets
    neither their own attack's nor another customer's, and no country leaks into the answer."""
    client.force_login(customer_viewer)
    for customer in (customer_a, customer_b):
        attack = make_attack(customer, vectors=("syn_flood",), alerts=1)
        alert = make_alert(feed, customer, attack, 1, vector="syn_flood", at=T0, ips=["8.8.8.8"], countries=["BR"])
        for name, pk in (("report-attack-places", attack.pk), ("report-alert-places", alert.pk)):
            response = client.get(reverse(name, args=[pk]))
            assert response.status_code in (403, 404), (name, customer.slug, response.status_code)
            assert b"BR" not in response.content
