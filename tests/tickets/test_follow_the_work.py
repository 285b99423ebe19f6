"""The ticket follows the work: acknowledged and assigned by the first action, Mitigating when a rule is
active, Monitoring when the attack ends, its title following the attack until a person edits it."""

from __future__ import annotations

import pytest

from tests.factories import UserFactory
from tickets import services, tasks
from tickets.models import Ticket

pytestmark = pytest.mark.django_db
S = Ticket.Status


def test_the_first_human_action_acknowledges_and_assigns(ticket, engineer):
    assert ticket.status == S.NEW and ticket.assignee is None

    services.ticket_add_note(ticket=ticket, body="looking at the capture", user=engineer)

    ticket.refresh_from_db()
    assert ticket.status == S.INVESTIGATING and ticket.acknowledged_at is not None
    assert ticket.assignee == engineer
    auto = ticket.timeline.get(kind="status_change")
    assert auto.body.startswith("Automatic:") and auto.data == {"from": "new", "to": "investigating"}
    assert ticket.timeline.filter(kind="assignment").count() == 1


def test_a_ticket_someone_has_keeps_its_assignee(ticket, engineer):
    owner = UserFactory(username="owen", role="Engineer")
    services.ticket_assign(ticket=ticket, assignee=owner, user=owner)

    services.ticket_add_note(ticket=ticket, body="second pair of eyes", user=engineer)

    ticket.refresh_from_db()
    assert ticket.assignee == owner


def test_an_applied_mitigation_moves_the_ticket_to_mitigating(ticket, engineer):
    services.ticket_record_mitigation(ticket=ticket, event="applied", description="M1 applied", user=engineer)

    ticket.refresh_from_db()
    assert ticket.status == S.MITIGATING and ticket.mitigated_at is not None
    assert list(ticket.timeline.filter(kind="status_change").values_list("data__to", flat=True)) == [
        "investigating",
        "mitigating",
    ]


def test_the_attacks_end_moves_it_to_monitoring_and_the_title_follows_until_edited(ticket, attack_a, engineer):
    services.ticket_record_mitigation(ticket=ticket, event="applied", description="M1 applied", user=engineer)
    attack_a.title = "UDP flood + SYN flood + ACK flood on 203.0.113.10"
    attack_a.ongoing = False
    attack_a.save()

    tasks.attach_new_attack_alerts()

    ticket.refresh_from_db()
    assert ticket.status == S.MONITORING
    assert ticket.title == attack_a.title
    assert ticket.timeline.filter(kind="edit", actor__isnull=True).exists()
    # A person's title sticks.
    services.ticket_update(ticket=ticket, user=engineer, title="Acme DNS origin exposed")
    attack_a.title = "something else"
    attack_a.save()
    tasks.attach_new_attack_alerts()
    ticket.refresh_from_db()
    assert ticket.title == "Acme DNS origin exposed"
