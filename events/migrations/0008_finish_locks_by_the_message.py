from importlib import import_module

from django.db import migrations

# events_finish on the message path takes the correlation lock by the message's correlation id (checked against the
# log right after: a message that lies is refused, EVD02) and reads the delivery and the event once each, as before
# parking had keys; the log path (p_event NULL) reads the correlation from the log first.
PREVIOUS = import_module("events.migrations.0007_synchronous_commit_when_announced").CREATE
FINISH = PREVIOUS[PREVIOUS.index("CREATE OR REPLACE FUNCTION events_finish"):]
OLD_HEAD = """  SELECT e2.* INTO e FROM events_delivery d2 JOIN events_outboxevent e2 ON e2.id = d2.event_id
   WHERE d2.id = p_delivery;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'delivery % does not exist', p_delivery USING ERRCODE = 'EVD01';
  END IF;
  PERFORM events_lock_correlation(e.correlation_id, false);  -- before the delivery row: the one lock order
  SELECT * INTO d FROM events_delivery WHERE id = p_delivery FOR UPDATE;
"""
NEW_HEAD = """  IF p_event IS NOT NULL THEN  -- before the delivery row: the one lock order (events_lock_correlation, inlined)
    PERFORM pg_advisory_xact_lock_shared(1163281474, hashtext(p_event->>'correlation_id'));
  ELSE
    PERFORM events_lock_correlation(e2.correlation_id, false) FROM events_delivery d2
       JOIN events_outboxevent e2 ON e2.id = d2.event_id WHERE d2.id = p_delivery;
  END IF;
  SELECT * INTO d FROM events_delivery WHERE id = p_delivery FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'delivery % does not exist', p_delivery USING ERRCODE = 'EVD01';
  END IF;
  SELECT * INTO e FROM events_outboxevent WHERE id = d.event_id;
"""
assert OLD_HEAD in FINISH
CREATE = FINISH.replace(OLD_HEAD, NEW_HEAD)


class Migration(migrations.Migration):
    dependencies = [("events", "0007_synchronous_commit_when_announced")]

    operations = [migrations.RunSQL(CREATE, FINISH)]
