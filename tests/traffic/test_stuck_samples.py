"""A traffic sample whose analysis job died does not stay in "parsing": retried once, then failed with the reason."""

from __future__ import annotations

from datetime import timedelta

from django.core.files.base import ContentFile
from django.utils import timezone

from traffic import services
from traffic.models import TrafficSample

LOG = b'203.0.113.9 - - [02/Mar/2026:14:00:01 +0000] "GET /login HTTP/1.1" 200 512 "-" "curl/8.5"\n' * 50


def _died_while_parsing(sample: TrafficSample, *, attempts: int, minutes_ago: int = 120) -> None:
    """What a worker killed mid-parse leaves: "parsing", an attempt that started long ago, no result."""
    TrafficSample.objects.filter(pk=sample.pk).update(
        status=TrafficSample.Status.PARSING,
        progress=40,
        parse_attempts=attempts,
        parse_started_at=timezone.now() - timedelta(minutes=minutes_ago),
    )


def _upload(customer, tmp_path, settings, name="access.log"):
    settings.MEDIA_ROOT = str(tmp_path)
    sample = services.sample_create(customer=customer, name=name, fileobj=ContentFile(LOG, name=name))
    return sample


def test_a_sample_stuck_in_parsing_is_retried_once_and_then_parses(
    customer_a, tmp_path, settings, django_capture_on_commit_callbacks
):
    sample = _upload(customer_a, tmp_path, settings)
    _died_while_parsing(sample, attempts=1)
    with django_capture_on_commit_callbacks(execute=True):
        assert services.samples_sweep_stuck() == {"retried": 1, "failed": 0}
    sample.refresh_from_db()
    assert sample.status == TrafficSample.Status.READY, sample.errors
    assert sample.parse_attempts == 2 and sample.record_count == 50


def test_a_sample_stuck_twice_is_failed_with_the_reason_and_the_page_says_so(
    customer_a, tmp_path, settings, engineer_client
):
    sample = _upload(customer_a, tmp_path, settings)
    _died_while_parsing(sample, attempts=2)
    assert services.samples_sweep_stuck() == {"retried": 0, "failed": 1}
    sample.refresh_from_db()
    assert sample.status == TrafficSample.Status.FAILED
    assert "attempt 2 did not finish within 3,900 s" in sample.errors[0]
    assert "marked failed" in sample.errors[0]
    html = engineer_client.get(sample.get_absolute_url()).content.decode()
    assert "Analysis failed: analysis attempt 2 did not finish" in html
    # The page's progress poll says it too, so an open page stops waiting.
    fragment = engineer_client.get(sample.get_absolute_url() + "?progress=1").content.decode()
    assert 'data-done="1"' in fragment and "Analysis failed" in fragment


def test_a_retried_sample_says_which_attempt_it_is(customer_a, tmp_path, settings, engineer_client):
    sample = _upload(customer_a, tmp_path, settings)
    _died_while_parsing(sample, attempts=1)
    services.samples_sweep_stuck()  # no on-commit run: the retry waits in the queue
    TrafficSample.objects.filter(pk=sample.pk).update(status=TrafficSample.Status.PARSING, parse_attempts=2)
    fragment = engineer_client.get(sample.get_absolute_url() + "?progress=1").content.decode()
    assert "Attempt 2 of 2: analysis attempt 1 did not finish" in fragment


def test_a_sample_parsing_within_its_time_limit_is_left_alone(customer_a, tmp_path, settings):
    sample = _upload(customer_a, tmp_path, settings)
    _died_while_parsing(sample, attempts=1, minutes_ago=5)
    assert services.samples_sweep_stuck() == {"retried": 0, "failed": 0}
    sample.refresh_from_db()
    assert sample.status == TrafficSample.Status.PARSING
