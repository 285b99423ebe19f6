from traffic.api import views


def register(router) -> None:  # noqa: ANN001
    router.register("traffic-samples", views.TrafficSampleViewSet, basename="trafficsample")
