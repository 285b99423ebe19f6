"""Seed the global allowlist: addresses no mitigation may ever block."""

from django.db import migrations

ENTRIES = [
    ("1.1.1.1", "public resolver: Cloudflare DNS"),
    ("1.0.0.1", "public resolver: Cloudflare DNS"),
    ("2606:4700:4700::1111", "public resolver: Cloudflare DNS"),
    ("2606:4700:4700::1001", "public resolver: Cloudflare DNS"),
    ("8.8.8.8", "public resolver: Google DNS"),
    ("8.8.4.4", "public resolver: Google DNS"),
    ("2001:4860:4860::8888", "public resolver: Google DNS"),
    ("2001:4860:4860::8844", "public resolver: Google DNS"),
    ("9.9.9.9", "public resolver: Quad9"),
    ("149.112.112.112", "public resolver: Quad9"),
    ("208.67.222.222", "public resolver: OpenDNS"),
    ("208.67.220.220", "public resolver: OpenDNS"),
    ("192.0.2.0/28", "Shieldwall synthetic monitoring probes"),
    # The edge's own ranges: blocking them at an origin cuts every proxied request (origin pulls).
    ("173.245.48.0/20", "edge: origin pulls"),
    ("103.21.244.0/22", "edge: origin pulls"),
    ("103.22.200.0/22", "edge: origin pulls"),
    ("103.31.4.0/22", "edge: origin pulls"),
    ("141.101.64.0/18", "edge: origin pulls"),
    ("108.162.192.0/18", "edge: origin pulls"),
    ("190.93.240.0/20", "edge: origin pulls"),
    ("188.114.96.0/20", "edge: origin pulls"),
    ("197.234.240.0/22", "edge: origin pulls"),
    ("198.41.128.0/17", "edge: origin pulls"),
    ("162.158.0.0/15", "edge: origin pulls"),
    ("104.16.0.0/13", "edge: origin pulls"),
    ("104.24.0.0/14", "edge: origin pulls"),
    ("172.64.0.0/13", "edge: origin pulls"),
    ("131.0.72.0/22", "edge: origin pulls"),
]


def seed(apps, schema_editor):
    Entry = apps.get_model("mitigations", "GlobalAllowlistEntry")
    for value, reason in ENTRIES:
        Entry.objects.get_or_create(value=value, defaults={"reason": reason})


def unseed(apps, schema_editor):
    apps.get_model("mitigations", "GlobalAllowlistEntry").objects.filter(value__in=[v for v, _ in ENTRIES]).delete()


class Migration(migrations.Migration):
    dependencies = [("mitigations", "0001_initial")]

    operations = [migrations.RunPython(seed, unseed)]
