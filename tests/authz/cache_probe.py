"""Run in a separate process by test_cache.py: checks one permission in a loop through its own
``AuthzCache`` and prints one JSON line per check: {"t": wall time, "allowed": bool, "cached": bool}.

argv: database name, instance id, user id, mode ("normal" or "stuck": after the first cached answer the
watcher thread hangs, as if it never heard of any change again).
"""

import json
import os
import sys
import time

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "saaskit.settings_test")

import django

django.setup()

from django.db import connections  # noqa: E402

connections["default"].settings_dict["NAME"] = sys.argv[1]

from authz import cache as cache_module  # noqa: E402

instance_id, user_id, mode = int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
cache = cache_module.AuthzCache(["orders"])
deadline = time.time() + 20
stuck_since = None
while time.time() < deadline:
    allowed = cache.allowed(instance_id, user_id, "get", "orders", "1")
    cached = (instance_id, user_id) in cache and time.monotonic() - cache_module.watcher.synced_at <= 1.0
    # "ready": the parent may revoke now (in stuck mode: once the watcher's last blocking read has ended)
    ready = cached and (mode != "stuck" or (stuck_since is not None and time.time() - stuck_since > 0.5))
    print(json.dumps({"t": time.time(), "allowed": allowed, "cached": cached, "ready": ready}), flush=True)
    if mode == "stuck" and cached and stuck_since is None:
        stuck_since = time.time()
        cache_module.watcher._poll_once = lambda: time.sleep(3600)  # type: ignore[method-assign]
    time.sleep(0.02)
