import pytest
from rest_framework.test import APIClient


@pytest.fixture
def api_client() -> APIClient:
    return APIClient()


@pytest.fixture(autouse=True)
def _empty_process_caches():
    """Consumers cache instances and the API caches a caller's standing per process; a test starts without
    what an earlier one cached."""
    from accounts.selectors import standing_cache_clear
    from events.consumers import instance_cache_clear

    for clear in (instance_cache_clear, standing_cache_clear):
        clear()
    yield
    for clear in (instance_cache_clear, standing_cache_clear):
        clear()
