"""A separate publishing process for integration tests: ``python -m tests.events.publisher_for_tests N INTERVAL
PREFIX`` publishes N ``record`` activities (details PREFIX0..PREFIXN-1), each in its own transaction."""

from __future__ import annotations

import os
import sys
import time


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "saaskit.settings_test")
    import django

    django.setup()
    from events import publish

    count, interval, prefix = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3]
    for i in range(count):
        publish("event-suspicious-activity", {"kind": "record", "detail": f"{prefix}{i}", "user_id": None},
                instance=None)
        time.sleep(interval)
    print(f"published {count}", flush=True)


if __name__ == "__main__":
    main()
