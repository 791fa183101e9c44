from tests.support.saga_fixtures import (  # noqa: F401  (pytest finds fixtures by name in a conftest)
    _empty_membership_cache,
    customer,
    fast_password_hashing,
    instance,
    other_instance,
    sent,
)
