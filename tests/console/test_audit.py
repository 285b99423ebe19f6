import pytest
from django.db import connection, transaction
from django.db.utils import DatabaseError, InternalError

from console.audit import audit_record, snapshot
from console.context import acting_as
from console.models import AuditEvent


def test_audit_event_cannot_be_updated_or_deleted_through_the_app(customer_a):
    event = audit_record(action="customer.update", obj=customer_a, before={"plan": "pro"}, after=snapshot(customer_a))
    event.action = "tampered"
    with pytest.raises(PermissionError):
        event.save()
    with pytest.raises(PermissionError):
        event.delete()
    with pytest.raises(PermissionError):
        AuditEvent.objects.filter(pk=event.pk).update(action="tampered")
    with pytest.raises(PermissionError):
        AuditEvent.objects.all().delete()
    assert AuditEvent.objects.get(pk=event.pk).action == "customer.update"


def test_audit_api_offers_no_way_to_change(api_as, engineer, customer_a):
    event = audit_record(action="customer.update", obj=customer_a)
    api = api_as(engineer)
    assert api.put(f"/api/audit/{event.pk}/", {"action": "x"}, format="json").status_code == 405
    assert api.delete(f"/api/audit/{event.pk}/").status_code == 405
    assert api.post("/api/audit/", {"action": "x"}, format="json").status_code == 405


def test_tasks_act_as_a_named_system_actor(customer_a):
    with acting_as("celery:expire_mitigations"):
        event = audit_record(action="mitigation.expire", obj=customer_a)
    assert event.actor is None
    assert event.actor_name == "celery:expire_mitigations"
    assert event.request_id


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the trigger exists on PostgreSQL only")
def test_postgresql_trigger_refuses_update_and_delete_around_the_model(customer_a):
    event = audit_record(action="customer.update", obj=customer_a)
    for sql in (
        "UPDATE console_auditevent SET action = 'x' WHERE id = %s",
        "DELETE FROM console_auditevent WHERE id = %s",
    ):
        with (
            pytest.raises((InternalError, DatabaseError), match="append-only"),
            transaction.atomic(),
            connection.cursor() as cursor,
        ):
            cursor.execute(sql, [event.pk])
    assert AuditEvent.objects.filter(pk=event.pk, action="customer.update").exists()
