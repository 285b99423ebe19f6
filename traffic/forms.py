from django import forms

from alerts.models import Attack
from console.models import Customer
from traffic.models import TrafficSample


class SampleUploadForm(forms.Form):
    customer = forms.ModelChoiceField(queryset=Customer.objects.all(), to_field_name="slug")
    attack = forms.ModelChoiceField(queryset=Attack.objects.all(), required=False)
    label = forms.ChoiceField(choices=TrafficSample.Label.choices, initial=TrafficSample.Label.ATTACK)
    kind = forms.ChoiceField(choices=[("", "detect from the file"), *TrafficSample.Kind.choices], required=False)
    file = forms.FileField()

    def clean(self):
        data = super().clean()
        attack = data.get("attack")
        if attack and data.get("customer") and attack.customer_id != data["customer"].pk:
            self.add_error("attack", "that attack belongs to another customer")
        return data


class SimulateForm(forms.Form):
    expression = forms.CharField(widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}))
    attack = forms.ModelChoiceField(queryset=TrafficSample.objects.filter(status="ready"), required=False)
    baseline = forms.ModelChoiceField(queryset=TrafficSample.objects.filter(status="ready"), required=False)
