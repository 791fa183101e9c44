"""Run in a separate process by test_freshness.py: asks one AuthZEN question in a loop exactly as a lean HTTP
path would (the service key, the subject's name, the cached decision) and prints one JSON line per answer:
{"t": wall time, "allowed": bool, "warm": bool}.

argv: database name, service key, instance id, subject id (as a PEP sends it), resource type, action, resource id.
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

from authz.cache import default_cache, memory_ok  # noqa: E402
from authzen import authentication, selectors  # noqa: E402

key, instance_id, subject, rtype, action, rid = sys.argv[2], int(sys.argv[3]), *sys.argv[4:8]
deadline = time.time() + 30
while time.time() < deadline:
    hits = (authentication.service_keys.hits, selectors.subject_names.hits, default_cache().hits)
    ctx = authentication.authenticate_key(key)
    user_id = selectors.subject_resolve(instance_id=instance_id, subject_id=subject) if ctx is not None else None
    allowed = user_id is not None and default_cache().allowed_for_subject(instance_id, user_id, action, rtype, rid)
    warm = memory_ok[0] and hits != (authentication.service_keys.hits, selectors.subject_names.hits,
                                     default_cache().hits)
    print(json.dumps({"t": time.time(), "allowed": allowed, "warm": warm}), flush=True)
    time.sleep(0.02)
