from django.apps import AppConfig


def _warm_geo(**_kwargs) -> None:
    """Load the GeoIP data (≈ 1 s) when a Celery worker process starts, not on its first upload."""
    import threading

    from traffic import geo

    threading.Thread(target=geo.warm, daemon=True, name="geoip-warm").start()


class TrafficConfig(AppConfig):
    name = "traffic"

    def ready(self) -> None:
        from celery.signals import worker_process_init

        worker_process_init.connect(_warm_geo, weak=False)
