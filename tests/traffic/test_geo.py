"""Country and ASN for source addresses, offline (issue 14)."""

from __future__ import annotations

import pytest

from tests.traffic.mmdb import write_mmdb
from traffic import geo


@pytest.fixture(autouse=True)
def _fresh():
    geo.reset()
    yield
    geo.reset()


def test_embedded_default_knows_countries_and_as_names(settings):
    settings.TRAFFIC_GEOIP_MMDB = ""
    google = geo.lookup("8.8.8.8")
    assert google["country"] == "US" and google["as_name"] == "GOOGLE" and google["source"] == "geoip2fast"
    assert geo.lookup("2001:4860:4860::8888")["country"] == "US"
    # Documentation and private ranges are unknown, not a country.
    assert geo.lookup("192.0.2.1")["country"] is None and geo.lookup("10.1.2.3")["as_name"] is None


def test_operator_mmdb_files_are_read_instead(settings, tmp_path):
    country = write_mmdb(
        tmp_path / "country.mmdb",
        {
            "8.8.8.0/24": {"country": {"iso_code": "DE", "names": {"en": "Germany"}}},
            "1.0.0.0/8": {"country": {"iso_code": "JP"}},
        },
    )
    asn = write_mmdb(
        tmp_path / "asn.mmdb",
        {"8.8.0.0/16": {"autonomous_system_number": 64500, "autonomous_system_organization": "Example Transit"}},
        database_type="GeoLite2-ASN",
    )
    settings.TRAFFIC_GEOIP_MMDB = f"{country},{asn}"
    assert geo.lookup("8.8.8.8") == {"country": "DE", "asn": 64500, "as_name": "Example Transit", "source": "mmdb"}
    assert geo.lookup("1.2.3.4") == {"country": "JP", "asn": None, "as_name": None, "source": "mmdb"}
    assert geo.lookup("9.9.9.9")["country"] is None  # not in the operator's file: unknown
