"""The password hasher of the test settings."""

from django.contrib.auth.hashers import Argon2PasswordHasher


class CheapArgon2PasswordHasher(Argon2PasswordHasher):
    """Argon2 at its lowest cost: production's algorithm and code paths (the ``argon2$`` hashes, verification,
    upgrades at login) at a fraction of a millisecond a hash instead of about a tenth of a second, which the
    suite paid for every user a fixture made and every login a test sent."""

    time_cost = 1
    memory_cost = 8  # KiB: argon2's minimum for one lane
    parallelism = 1
