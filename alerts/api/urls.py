from alerts.api import views


def register(router) -> None:
    router.register("feeds", views.FeedViewSet, basename="feed")
    router.register("deliveries", views.DeliveryViewSet, basename="delivery")
    router.register("alerts", views.AlertViewSet, basename="alert")
    router.register("attacks", views.AttackViewSet, basename="attack")
    router.register("silences", views.SilenceViewSet, basename="silence")
