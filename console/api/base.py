"""Shared pieces of every API viewset."""

from console.context import current_actor


class ActorMixin:
    """Tells the audit log who acts: DRF authenticates inside the view, after the middleware."""

    def initial(self, request, *args, **kwargs) -> None:
        super().initial(request, *args, **kwargs)
        if request.user and request.user.is_authenticated:
            current_actor.set(request.user)
