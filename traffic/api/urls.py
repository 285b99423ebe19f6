from traffic.api import views


def register(router) -> None:
    router.register("traffic-samples", views.TrafficSampleViewSet, basename="trafficsample")
