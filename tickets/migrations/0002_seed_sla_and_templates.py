"""Seed an SLA policy per plan and priority, and the five customer message templates."""

from django.db import migrations

# minutes: acknowledge, first customer update, mitigation
SLA = {
    "enterprise": {"P1": (15, 30, 60), "P2": (30, 60, 120), "P3": (60, 120, 240), "P4": (240, 480, 1440)},
    "business": {"P1": (30, 60, 120), "P2": (60, 120, 240), "P3": (120, 240, 480), "P4": (480, 960, 2880)},
    "pro": {"P1": (60, 120, 240), "P2": (120, 240, 480), "P3": (240, 480, 960), "P4": (1440, 2880, 4320)},
    "free": {"P1": (240, 480, 1440), "P2": (480, 960, 2880), "P3": (1440, 2880, 4320), "P4": (2880, 5760, 10080)},
}

SIGNATURE = """
Ticket: {{ ticket.number }}
{{ engineer }}
Shieldwall Security Operations"""

TEMPLATES = [
    (
        "acknowledgement",
        "Acknowledgement",
        "We are looking into an attack on {{ attack.targets }}",
        """Hello {{ customer.name }},

We have detected a possible attack against {{ attack.targets }} and an engineer is investigating it now.

What we see so far:
- Attack vectors: {{ attack.vectors }}
- Peak: {{ attack.peak }}
- Started: {{ attack.started }}{% if attack.ended %}
- Ended: {{ attack.ended }}{% endif %}

We will update you as soon as we know more. Please reply to this message if you notice any impact on your services.
""" + SIGNATURE,
    ),
    (
        "attack-identified",
        "Attack identified",
        "Attack identified: {{ attack.vectors }} on {{ attack.targets }}",
        """Hello {{ customer.name }},

We have identified the attack against {{ attack.targets }}.

- Attack vectors: {{ attack.vectors }}
- Peak so far: {{ attack.peak }}
- Started: {{ attack.started }}

We are preparing a mitigation and will let you know once it is in place.
""" + SIGNATURE,
    ),
    (
        "mitigation-applied",
        "Mitigation applied",
        "Mitigation in place for the attack on {{ attack.targets }}",
        """Hello {{ customer.name }},

A mitigation is now in place for the {{ attack.vectors }} attack against {{ attack.targets }} (peak {{ attack.peak }}).

Legitimate traffic should be flowing normally. If you still see errors or slowness, please tell us right away.
""" + SIGNATURE,
    ),
    (
        "monitoring",
        "Monitoring",
        "Monitoring: the attack on {{ attack.targets }} is under control",
        """Hello {{ customer.name }},

The attack against {{ attack.targets }} is under control{% if attack.ended %}; it ended at {{ attack.ended }}{% endif %}. We keep watching your traffic closely and the mitigation stays in place while we do.
""" + SIGNATURE,
    ),
    (
        "post-incident-summary",
        "Post-incident summary",
        "Post-incident summary for {{ ticket.number }}",
        """Hello {{ customer.name }},

Here is the summary of the incident {{ ticket.number }}: {{ ticket.title }}.

- Attack vectors: {{ attack.vectors }}
- Targets: {{ attack.targets }}
- Peak: {{ attack.peak }}
- Started: {{ attack.started }}
- Ended: {{ attack.ended|default:"still under observation" }}
{% if ticket.outcome %}- Outcome: {{ ticket.outcome }}
{% endif %}
A detailed attack report is available on request. Thank you for your patience.
""" + SIGNATURE,
    ),
]


def seed(apps, schema_editor):
    SlaPolicy = apps.get_model("tickets", "SlaPolicy")
    TicketTemplate = apps.get_model("tickets", "TicketTemplate")
    for plan, by_severity in SLA.items():
        for severity, (ack, update, mitigation) in by_severity.items():
            SlaPolicy.objects.get_or_create(
                plan=plan,
                severity=severity,
                defaults={
                    "acknowledge_minutes": ack,
                    "first_update_minutes": update,
                    "mitigation_minutes": mitigation,
                },
            )
    for position, (slug, name, subject, body) in enumerate(TEMPLATES):
        TicketTemplate.objects.get_or_create(
            slug=slug, defaults={"name": name, "subject": subject, "body": body, "position": position}
        )


class Migration(migrations.Migration):
    dependencies = [("tickets", "0001_initial")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
