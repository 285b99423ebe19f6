from django.apps import AppConfig


class TrafficConfig(AppConfig):
    name = "traffic"
    # The GeoIP warm-up at a worker's start is connected in traffic/tasks.py, which every Celery
    # worker imports: importing celery.signals here cost every process 0.13 s at start-up.
