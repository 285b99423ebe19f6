"""The generate-report form: an attack, a ticket, or a period of one customer."""

from __future__ import annotations

from typing import Any

from django import forms

from alerts.models import Attack
from console.models import Customer
from tickets import selectors as ticket_selectors


class ReportRequestForm(forms.Form):
    SUBJECTS = [("attack", "An attack"), ("ticket", "A ticket (incident)"), ("period", "A period")]

    subject = forms.ChoiceField(choices=SUBJECTS, initial="attack", widget=forms.RadioSelect)
    attack = forms.ModelChoiceField(queryset=Attack.objects.none(), required=False)
    ticket = forms.CharField(required=False, max_length=20, help_text="ticket number, e.g. SW-2026-0042")
    customer = forms.ModelChoiceField(queryset=Customer.objects.none(), required=False, to_field_name="slug")
    start = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    end = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = user
        attacks = Attack.objects.visible_to(user).exclude(customer__isnull=True).select_related("customer")
        self.fields["attack"].queryset = attacks.order_by("-started_at", "-id")
        self.fields["attack"].label_from_instance = lambda a: (
            f"#{a.pk} {a} — {a.customer.name}, {a.started_at:%Y-%m-%d %H:%M} UTC"
        )
        self.fields["customer"].queryset = Customer.objects.visible_to(user)

    def recent_attacks(self) -> list[Attack]:
        """The select lists the latest attacks; a linked one (?attack=) is added if older."""
        qs = list(self.fields["attack"].queryset[:100])
        chosen = self.initial.get("attack") or self.data.get("attack")
        if chosen and str(chosen).isdigit() and all(a.pk != int(chosen) for a in qs):
            extra = self.fields["attack"].queryset.filter(pk=int(chosen)).first()
            if extra:
                qs.insert(0, extra)
        return qs

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        subject = data.get("subject")
        if subject == "attack" and not data.get("attack"):
            self.add_error("attack", "Choose the attack to report on.")
        if subject == "ticket":
            ticket = ticket_selectors.ticket_by_number((data.get("ticket") or "").strip(), user=self.user)
            if ticket is None:
                self.add_error("ticket", "No such ticket.")
            data["ticket_obj"] = ticket
        if subject == "period":
            for name in ("customer", "start", "end"):
                if not data.get(name):
                    self.add_error(name, "Needed for a period report.")
            if data.get("start") and data.get("end") and data["end"] < data["start"]:
                self.add_error("end", "The period ends before it starts.")
        return data


class ShareForm(forms.Form):
    days = forms.IntegerField(min_value=1, max_value=90, initial=14, label="Valid for (days)")
