"""Seed the console's roles as Groups, and make the audit log append-only in PostgreSQL."""

from django.db import migrations

ROLES = ["Viewer", "Engineer", "Senior engineer", "Admin", "Customer viewer"]

GUARD_SQL = """
CREATE OR REPLACE FUNCTION console_auditevent_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only: % refused', TG_OP;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER console_auditevent_no_update_delete
    BEFORE UPDATE OR DELETE ON console_auditevent
    FOR EACH ROW EXECUTE FUNCTION console_auditevent_append_only();
"""
UNGUARD_SQL = """
DROP TRIGGER IF EXISTS console_auditevent_no_update_delete ON console_auditevent;
DROP FUNCTION IF EXISTS console_auditevent_append_only();
"""


def seed_roles(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    for name in ROLES:
        Group.objects.get_or_create(name=name)


def guard_audit(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(GUARD_SQL, params=None)


def unguard_audit(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(UNGUARD_SQL, params=None)


class Migration(migrations.Migration):
    dependencies = [
        ("console", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
    ]

    operations = [
        migrations.RunPython(seed_roles, migrations.RunPython.noop),
        migrations.RunPython(guard_audit, unguard_audit),
    ]
