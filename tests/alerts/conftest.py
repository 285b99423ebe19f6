import pytest

from alerts.models import Feed


@pytest.fixture
def make_feed(db):
    """A feed of a format, and its bearer token (shown once, stored hashed)."""

    def make(format: str, slug: str | None = None, **fields):
        feed = Feed(name=f"{format} feed", slug=slug or f"{format}-feed", format=format, **fields)
        token = feed.set_secret()
        feed.save()
        return feed, token

    return make


@pytest.fixture
def post(client, django_capture_on_commit_callbacks):
    """POST a delivery to the webhook and run what it enqueues on commit (the parsing task)."""

    def send(feed, token, body: bytes, **headers):
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(
                f"/ingest/{feed.slug}/",
                data=body,
                content_type="application/json",
                HTTP_AUTHORIZATION=f"Bearer {token}",
                **headers,
            )

    return send
