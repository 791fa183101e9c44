import pytest
from rest_framework.test import APIClient


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture(autouse=True)
def _empty_event_instance_cache():
    """Consumers cache instances per process; a test starts without what an earlier one cached."""
    from events.consumers import instance_cache_clear

    instance_cache_clear()
    yield
    instance_cache_clear()
