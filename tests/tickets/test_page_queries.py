"""A ticket's page runs a fixed number of queries, whatever the alerts, attacks and timeline behind it."""

from __future__ import annotations

from itertools import count

import pytest

from tests.querycount import assert_same_queries_at_3n
from tests.tickets.conftest import make_alert
from tickets import services

pytestmark = pytest.mark.django_db
SERIAL = count(100)


def test_ticket_page_runs_the_same_queries_for_n_and_3n_alerts(
    engineer_client, engineer, ticket, feed, make_attack, customer_a, django_assert_num_queries
):
    def add(k):
        # More alerts of the attack, a second attack, and a note each: the timeline grows too.
        attack = make_attack(customer_a, target=f"203.0.113.{next(SERIAL) % 250}", n=k)
        alerts = list(attack.alerts.all()) + [
            make_alert(feed, customer_a, attack=ticket.attacks.first(), i=next(SERIAL)) for _ in range(k)
        ]
        services.ticket_add_alerts(ticket=ticket, alerts=alerts, user=engineer)
        services.ticket_add_note(ticket=ticket, body=f"{k} more alerts", user=engineer)

    response = assert_same_queries_at_3n(
        engineer_client,
        ticket.get_absolute_url(),
        add,
        n=10,
        most=14,
        django_assert_num_queries=django_assert_num_queries,
    )
    assert ticket.alerts.count() == 3 + 2 * 30
    assert response.context["alert_count"] == ticket.alerts.count()
