"""The triage queue's rows, rendered in Python: ``{% load queue %}{% queue_rows alerts fresh %}``.

A page is 200 rows of a dozen fields each. Through an ``{% include %}`` per row the template engine
spent most of the page's server time resolving about 8,000 variables and reversing 400 URLs; built
here (every value escaped as ``escape`` would, or an int) the same markup costs a small fraction of that.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from typing import Any

from django import template
from django.contrib.humanize.templatetags.humanize import naturaltime
from django.template.defaultfilters import truncatechars
from django.urls import reverse
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe

from console import units

register = template.Library()

ROW = (
    '<tr id="alert-{pk}" data-id="{pk}" data-url="{url}" data-urgency="{urgency}" data-seen="{seen}"'
    ' data-attack="{attack}" class="sev-row-{severity}{classes}"{group}>\n'
    '  <td><input type="checkbox" name="ids" value="{pk}" form="bulk" aria-label="select alert {pk}"></td>\n'
    '  <td title="{reasons}"><strong>{urgency}</strong></td>\n'
    '  <td><span class="badge sev-{severity}">{severity}</span></td>\n'
    '  <td class="queue-title"><a href="{url}" title="{title} · {feed} · {layer}">{short_title}</a>'
    ' <button type="button" class="badge group-count" data-expand="{pk}"{expand_hidden}'
    ' title="alerts of the same attack (o to expand)">+<span>{members}</span></button></td>\n'
    "  <td>{customer}</td>\n"
    "  <td><code>{target}</code></td>\n"
    "  <td>{vector}</td>\n"
    "  <td>{rates}</td>\n"
    "  <td>{count}</td>\n"
    '  <td title="{seen_iso}">{seen_ago}</td>\n'
    "  <td>{status}{assignee}</td>\n"
    "</tr>\n"
)
UNASSIGNED = '<span class="muted">unassigned</span>'


def _e(value: Any) -> str:
    """What Django's ``escape`` gives (``html.escape`` of the text), without its lazy-string wrapper per call."""
    return html.escape(str(value))


def _status_labels() -> dict[str, str]:
    from alerts.models import Alert

    return {value: str(label) for value, label in Alert.Status.choices}


def queue_row(
    alert: Any, *, detail_url: str, labels: dict[str, str], member_of: int | None = None, fresh: bool = False
) -> str:
    """One row of the queue (a lead, or with ``member_of`` one of the alerts grouped under it), escaped."""
    gone = alert.status not in ("new", "acknowledged")
    members = getattr(alert, "members", [])
    last_seen = timezone.localtime(alert.last_seen) if alert.last_seen else None
    title = alert.title or ""
    return ROW.format(
        pk=int(alert.pk),
        url=_e(detail_url.replace("/0/", f"/{int(alert.pk)}/")),
        urgency=int(alert.urgency),
        # The date filter's "U" and "c".
        seen=int(last_seen.timestamp()) if last_seen else "",
        attack=int(alert.attack_id) if alert.attack_id else "",
        severity=_e(alert.severity),
        classes=(" fresh" if fresh else "") + (" member" if member_of else " lead") + (" gone" if gone else ""),
        group=f' data-group="{int(member_of)}" hidden' if member_of else "",
        reasons=_e("; ".join(str(r) for r in alert.urgency_reasons or [])),
        title=_e(title),
        feed=_e(alert.feed.slug) if alert.feed_id else "",
        layer=_e(alert.layer),
        short_title=_e(title if len(title) <= 90 else truncatechars(title, 90)),
        expand_hidden=" hidden" if member_of or not members else "",
        members=0 if member_of else len(members),
        customer=_e(alert.customer.name) if alert.customer_id else UNASSIGNED,
        target=_e(alert.target or "—"),
        vector=_e(units.vector_title(alert.vector)),
        rates=_e(units.rates(alert.bps, alert.pps, alert.rps) or "—"),
        count=int(alert.count),
        seen_iso=_e(last_seen.isoformat()) if last_seen else "",
        seen_ago=_e(naturaltime(last_seen)) if last_seen else "",
        status=_e(labels.get(alert.status, alert.status)),
        assignee=f" · {_e(alert.assignee.username)}" if alert.assignee_id else "",
    )


@register.simple_tag
def queue_rows(alerts: Iterable[Any], fresh: bool = False) -> SafeString:
    """Every lead followed by its (hidden) members, as ``alerts/_queue_rows.html`` did with includes."""
    detail_url, labels = reverse("alert-detail", args=[0]), _status_labels()
    out = []
    for alert in alerts:
        out.append("\n" + queue_row(alert, detail_url=detail_url, labels=labels, fresh=fresh))
        for member in getattr(alert, "members", []):
            out.append(queue_row(member, detail_url=detail_url, labels=labels, member_of=alert.pk, fresh=fresh))
    return mark_safe("".join(out))  # every value in a row is escaped (_e) or an int
