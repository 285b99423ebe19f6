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
    assert auto.body.startswith("Automatic:") and auto.data == {"from": "new", "to": "investigating", "automatic": True}
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


def test_an_automatic_acknowledge_and_assignment_can_be_undone(ticket, engineer, client):
    services.ticket_add_note(ticket=ticket, body="wrong ticket, sorry", user=engineer)
    ticket.refresh_from_db()
    status_step = ticket.timeline.get(kind="status_change")
    assignment_step = ticket.timeline.get(kind="assignment")
    client.force_login(engineer)
    page = client.get(ticket.get_absolute_url()).content.decode()
    assert f'data-undo="{status_step.pk}"' in page and f'data-undo="{assignment_step.pk}"' in page

    client.post(f"/tickets/{ticket.number}/undo/{assignment_step.pk}/")
    client.post(f"/tickets/{ticket.number}/undo/{status_step.pk}/")

    ticket.refresh_from_db()
    assert ticket.status == S.NEW and ticket.assignee is None
    assert ticket.acknowledged_at is None  # nobody is on it: the acknowledge clock runs again
    page = client.get(ticket.get_absolute_url()).content.decode()
    assert f'data-undo="{status_step.pk}"' not in page and "undone" in page


def test_an_undo_refuses_a_step_the_ticket_has_moved_on_from(ticket, engineer):
    services.ticket_record_mitigation(ticket=ticket, event="applied", description="M1 applied", user=engineer)
    ticket.refresh_from_db()
    to_investigating = ticket.timeline.get(kind="status_change", data__to="investigating")

    with pytest.raises(services.TicketConflict, match="has moved on since: it is Mitigating"):
        services.ticket_undo(ticket=ticket, entry_id=to_investigating.pk, user=engineer)
    to_mitigating = ticket.timeline.get(kind="status_change", data__to="mitigating")
    services.ticket_undo(ticket=ticket, entry_id=to_mitigating.pk, user=engineer)
    ticket.refresh_from_db()
    assert ticket.status == S.INVESTIGATING
    with pytest.raises(services.TicketConflict, match="already undone"):
        services.ticket_undo(ticket=ticket, entry_id=to_mitigating.pk, user=engineer)


def test_a_persons_step_is_not_undoable_here(ticket, engineer):
    services.ticket_transition(ticket=ticket, to=S.INVESTIGATING, user=engineer)
    step = ticket.timeline.get(kind="status_change")

    with pytest.raises(services.TicketError, match="only an automatic step"):
        services.ticket_undo(ticket=ticket, entry_id=step.pk, user=engineer)


def test_undoing_the_followed_title_keeps_the_engineers_title(ticket, attack_a, engineer):
    original = ticket.title
    attack_a.title = "UDP flood + SYN flood + ACK flood on 203.0.113.10"
    attack_a.save()
    tasks.attach_new_attack_alerts()
    ticket.refresh_from_db()
    followed = ticket.timeline.get(kind="edit", actor__isnull=True)
    assert ticket.title == attack_a.title and followed.data["automatic"] is True

    services.ticket_undo(ticket=ticket, entry_id=followed.pk, user=engineer)
    attack_a.title = "yet another summary"
    attack_a.save()
    tasks.attach_new_attack_alerts()

    ticket.refresh_from_db()
    assert ticket.title == original
