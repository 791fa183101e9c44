from tests.support.saga_fixtures import (  # noqa: F401  (pytest finds fixtures by name in a conftest)
    customer,
    fast_password_hashing,
    instance,
    other_instance,
    sent,
)
