from __future__ import annotations

from typing import Any

from django.db import models

from console import roles


class CustomerScopedQuerySet(models.QuerySet):
    """Rows that belong to one customer. ``visible_to`` is the one scoping rule.

    Internal roles see everything, a customer viewer only their customer's rows of the
    kinds that are customer-facing (``customer_visible = True`` on the model), an
    outsider nothing.
    """

    customer_field = "customer"

    def for_customer(self, customer: Any) -> CustomerScopedQuerySet:
        return self.filter(**{self.customer_field: customer})

    def visible_to(self, user: Any) -> CustomerScopedQuerySet:
        if roles.is_internal(user):
            return self
        customer_id = roles.bound_customer_id(user)
        if customer_id is None or not getattr(self.model, "customer_visible", False):
            return self.none()
        return self.filter(**{f"{self.customer_field}_id": customer_id})
