from __future__ import annotations

import json

from django import forms

from alerts.feeds import FEED_EDITABLE_FIELDS
from alerts.models import Feed
from alerts.services import silence_validate


class FeedForm(forms.ModelForm):
    """A new feed: its slug (the webhook URL) and every editable setting."""

    pull_url = forms.URLField(required=False, assume_scheme="https")

    class Meta:
        model = Feed
        fields = ["slug", *FEED_EDITABLE_FIELDS]
        widgets = {"options": forms.Textarea(attrs={"rows": 8, "class": "mono"})}

    def clean_options(self):
        value = self.cleaned_data.get("options")
        if value in (None, ""):
            return {}
        if not isinstance(value, dict):
            raise forms.ValidationError("options must be a JSON object")
        return value

    def clean(self):
        data = super().clean()
        if data.get("mode") == Feed.Mode.PULL and not data.get("pull_url"):
            self.add_error("pull_url", "a pull feed needs a URL to poll")
        return data


class FeedEditForm(FeedForm):
    """An existing feed's settings; the slug stays, senders are configured with it."""

    class Meta(FeedForm.Meta):
        fields = list(FEED_EDITABLE_FIELDS)
        # The signing key is a secret: never written back into the page.
        widgets = {**FeedForm.Meta.widgets, "signing_key": forms.PasswordInput(render_value=False)}
        help_texts = {"signing_key": "Leave empty to keep the current key; a new value replaces it."}

    def clean_signing_key(self) -> str:
        return self.cleaned_data.get("signing_key") or self.instance.signing_key


class SilenceForm(forms.Form):
    matchers_json = forms.CharField(widget=forms.HiddenInput, required=False)
    field = forms.CharField(required=False)
    comment = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)
    duration_minutes = forms.IntegerField(min_value=1, max_value=60 * 24 * 30, initial=120)

    def clean(self):
        data = super().clean()
        # Matchers come as repeated field/op/value inputs, or as JSON (the preview and API).
        fields = self.data.getlist("m_field") if hasattr(self.data, "getlist") else []
        if fields:
            ops, values = self.data.getlist("m_op"), self.data.getlist("m_value")
            raw = [
                {"field": f, "op": o, "value": v} for f, o, v in zip(fields, ops, values, strict=False) if f and v != ""
            ]
        else:
            try:
                raw = json.loads(data.get("matchers_json") or "[]")
            except json.JSONDecodeError as exc:
                raise forms.ValidationError(f"matchers are not valid JSON: {exc}") from exc
        try:
            data["matchers"] = silence_validate(raw)
        except ValueError as exc:
            raise forms.ValidationError(str(exc)) from exc
        return data
