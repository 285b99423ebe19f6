from mitigations.api import views


def register(router) -> None:
    router.register("mitigations", views.MitigationViewSet, basename="mitigation")
    router.register("lists", views.MitigationListViewSet, basename="mitigationlist")
    router.register("allowlist", views.GlobalAllowlistViewSet, basename="globalallowlist")
