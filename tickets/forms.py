from __future__ import annotations

from django import forms

from console.models import Customer
from tickets.models import Ticket


class TicketForm(forms.Form):
    """Open a ticket by hand: a customer called, or a report arrived outside the feeds."""

    customer = forms.ModelChoiceField(queryset=Customer.objects.all(), to_field_name="slug")
    title = forms.CharField(max_length=300)
    severity = forms.ChoiceField(choices=Ticket.Severity.choices, initial=Ticket.Severity.P3)
    summary = forms.CharField(widget=forms.Textarea(attrs={"rows": 5}), required=False)


class InboundTicketForm(forms.Form):
    """A new ticket from a customer mail that names none: whose it is, how urgent, its title."""

    customer = forms.ModelChoiceField(queryset=Customer.objects.current(), to_field_name="slug")
    severity = forms.ChoiceField(choices=Ticket.Severity.choices, initial=Ticket.Severity.P3)
    title = forms.CharField(max_length=300, required=False, help_text="the mail's subject when left empty")
