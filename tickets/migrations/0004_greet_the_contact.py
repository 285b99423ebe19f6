"""Customer message templates greet the contact by name, not the company."""

from django.db import migrations

OLD = "Hello {{ customer.name }},"
NEW = "Hello {{ contact.name }},"


def forwards(apps, schema_editor):
    TicketTemplate = apps.get_model("tickets", "TicketTemplate")
    for template in TicketTemplate.objects.filter(body__contains=OLD):
        template.body = template.body.replace(OLD, NEW)
        template.save(update_fields=["body"])


def backwards(apps, schema_editor):
    TicketTemplate = apps.get_model("tickets", "TicketTemplate")
    for template in TicketTemplate.objects.filter(body__contains=NEW):
        template.body = template.body.replace(NEW, OLD)
        template.save(update_fields=["body"])


class Migration(migrations.Migration):
    dependencies = [("tickets", "0003_escalation_teams_and_mail_kinds")]
    operations = [migrations.RunPython(forwards, backwards)]
