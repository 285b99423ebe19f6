"""Forms of the mitigation pages."""

from __future__ import annotations

from django import forms

from console.models import Customer
from mitigations.listformats import FORMATS
from mitigations.models import EnforcementTarget, ListItem, Mitigation, MitigationList


class MitigationForm(forms.Form):
    customer = forms.ModelChoiceField(queryset=Customer.objects.all(), to_field_name="slug")
    title = forms.CharField(required=False, max_length=200)
    kind = forms.ChoiceField(choices=Mitigation.Kind.choices, initial=Mitigation.Kind.FIREWALL_RULE)
    expression = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false", "class": "mono"}),
        help_text="e.g. ip.src in {198.51.100.0/24} and udp.dstport eq 53",
    )
    value = forms.CharField(required=False, help_text="IP access: 198.51.100.7, 198.51.100.0/24, AS64500 or CN")
    mitigation_list = forms.ModelChoiceField(
        queryset=MitigationList.objects.all(), required=False, to_field_name="name", label="List"
    )
    action = forms.ChoiceField(choices=Mitigation.Action.choices, initial=Mitigation.Action.BLOCK)
    enforcement_target = forms.ModelChoiceField(
        queryset=EnforcementTarget.objects.filter(enabled=True),
        to_field_name="name",
        required=False,
        empty_label="— none: export only —",
        label="Enforcement target",
        help_text="a configured namespace, host command or Cloudflare zone; none means a download to apply by hand",
    )
    also_targets = forms.ModelMultipleChoiceField(
        queryset=EnforcementTarget.objects.filter(enabled=True).exclude(kind=EnforcementTarget.Kind.EXPORT),
        to_field_name="name",
        required=False,
        label="Also enforce on",
        help_text="further configured targets (a second scrubbing namespace, the customer's zone), each its own step",
    )
    ttl_minutes = forms.IntegerField(min_value=1, initial=60, label="Time to live (minutes)")
    rate_requests = forms.IntegerField(required=False, min_value=1, label="Rate: requests or packets")
    rate_period = forms.IntegerField(required=False, min_value=1, initial=60, label="per (seconds)")
    rate_burst = forms.IntegerField(required=False, min_value=0, initial=0, label="burst")
    rate_per_source = forms.BooleanField(required=False, initial=True, label="per source address")
    mitigation_timeout = forms.IntegerField(required=False, initial=600, label="Cloudflare mitigation timeout (s)")
    attack = forms.IntegerField(required=False, widget=forms.HiddenInput)
    ticket = forms.CharField(required=False, label="Ticket number", help_text="SW-2026-0001")

    def rate(self) -> dict:
        d = self.cleaned_data
        if not d.get("rate_requests"):
            return {}
        return {
            "requests": d["rate_requests"],
            "period": d.get("rate_period") or 60,
            "burst": d.get("rate_burst") or 0,
            "per_source": bool(d.get("rate_per_source")),
            "mitigation_timeout": d.get("mitigation_timeout") or 600,
        }

    def options(self) -> dict:
        return {}  # where it acts comes from the enforcement target, never from the form


class ListForm(forms.Form):
    name = forms.RegexField(regex=r"^[a-z0-9_]{1,50}$", help_text="lowercase letters, digits, _ (used as $name)")
    purpose = forms.ChoiceField(choices=MitigationList.Purpose.choices)
    customer = forms.ModelChoiceField(
        queryset=Customer.objects.all(), to_field_name="slug", required=False, empty_label="— global —"
    )
    description = forms.CharField(required=False, max_length=255)


class ListImportForm(forms.Form):
    text = forms.CharField(
        required=False, widget=forms.Textarea(attrs={"rows": 6, "class": "mono"}), label="Paste addresses"
    )
    file = forms.FileField(required=False, label="or upload a file")
    format = forms.ChoiceField(choices=[(f, f) for f in FORMATS], initial="auto")
    ttl_minutes = forms.IntegerField(
        required=False, min_value=1, max_value=ListItem.MAX_TTL_SECONDS // 60, label="Items expire after (minutes)"
    )
    comment = forms.CharField(required=False, max_length=255)

    def clean(self) -> dict:
        data = super().clean()
        upload = data.get("file")
        if upload:
            if upload.size > 20 * 1024 * 1024:
                raise forms.ValidationError("files up to 20 MB")
            data["text"] = upload.read().decode("utf-8", "replace")
        if not data.get("text"):
            raise forms.ValidationError("paste addresses or upload a file")
        return data
