from importlib import import_module

from django.db import migrations, models
from django.db.models import Q

# Parking with a key (events.delivery): a parked delivery waits for an event name ("*": any) in its own
# correlation; a completion wakes only the parked deliveries waiting for it. The lost wakeup between "not ready"
# and the write of the parked state is closed by the correlation lock (an advisory lock on the correlation id):
# every run takes it SHARED with its first statement (events_run_lock / events_claim) or in events_finish, before
# the delivery row; a run about to park takes it EXCLUSIVE, runs the consumer again (what committed meanwhile is
# visible now) and writes the parked state before it lets go. A completion either committed before (the second run
# sees it) or waits, and its wake sees the parked row.
CREATE = r"""
CREATE OR REPLACE FUNCTION events_lock_correlation(p_correlation text, p_exclusive boolean) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
  IF p_exclusive THEN
    PERFORM pg_advisory_xact_lock(1163281474, hashtext(p_correlation));
  ELSE
    PERFORM pg_advisory_xact_lock_shared(1163281474, hashtext(p_correlation));
  END IF;
  RETURN true;
END $$;

CREATE OR REPLACE FUNCTION events_run_lock(p_delivery bigint, p_correlation text) RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
  IF NOT events_run_lock(p_delivery) THEN  -- the run lock alone (events_begin tries it to see a live run)
    RETURN false;
  END IF;
  RETURN events_lock_correlation(p_correlation, false);
END $$;

CREATE OR REPLACE FUNCTION events_claim(p_delivery bigint) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  d events_delivery%ROWTYPE;
  e events_outboxevent%ROWTYPE;
BEGIN
  SELECT * INTO d FROM events_delivery WHERE id = p_delivery;
  IF NOT FOUND THEN
    RETURN json_build_object('was', NULL)::text;
  END IF;
  SELECT * INTO e FROM events_outboxevent WHERE id = d.event_id;
  IF NOT events_run_lock(p_delivery, e.correlation_id) THEN
    RETURN json_build_object('was', 'running')::text;
  END IF;
  SELECT * INTO d FROM events_delivery WHERE id = p_delivery;  -- as of now, under the locks
  IF NOT events_owed(d.status, d.next_attempt_at) THEN
    RETURN json_build_object('was', d.status)::text;
  END IF;
  RETURN json_build_object('was', d.status, 'run', json_build_array(d.consumer, e.id, e.name, e.version,
         e.occurred_at, e.instance_id, e.instance_slug, e.correlation_id, e.causation_id, e.payload))::text;
END $$;

CREATE OR REPLACE FUNCTION events_finish(p_delivery bigint, p_consumer text, p_event jsonb, p_wake integer)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  d events_delivery%ROWTYPE;
  e events_outboxevent%ROWTYPE;
  woken jsonb;
BEGIN
  SELECT e2.* INTO e FROM events_delivery d2 JOIN events_outboxevent e2 ON e2.id = d2.event_id
   WHERE d2.id = p_delivery;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'delivery % does not exist', p_delivery USING ERRCODE = 'EVD01';
  END IF;
  PERFORM events_lock_correlation(e.correlation_id, false);  -- before the delivery row: the one lock order
  SELECT * INTO d FROM events_delivery WHERE id = p_delivery FOR UPDATE;
  IF p_event IS NOT NULL THEN  -- NULL: the run read its event from the log
    IF d.consumer IS DISTINCT FROM p_consumer
       OR e.id::text IS DISTINCT FROM p_event->>'id'
       OR e.name IS DISTINCT FROM p_event->>'name'
       OR e.version::text IS DISTINCT FROM p_event->>'version'
       OR e.occurred_at IS DISTINCT FROM (p_event->>'time')::timestamptz
       OR e.instance_id::text IS DISTINCT FROM p_event->'instance'->>'id'
       OR e.instance_slug IS DISTINCT FROM p_event->'instance'->>'slug'
       OR e.correlation_id IS DISTINCT FROM p_event->>'correlation_id'
       OR e.causation_id IS DISTINCT FROM p_event->>'causation_id'
       OR e.payload IS DISTINCT FROM p_event->'payload' THEN
      RAISE EXCEPTION 'the message for delivery % does not match the event log', p_delivery USING ERRCODE = 'EVD02';
    END IF;
  ELSIF d.consumer IS DISTINCT FROM p_consumer THEN
    RAISE EXCEPTION 'delivery % is not for %', p_delivery, p_consumer USING ERRCODE = 'EVD02';
  END IF;
  IF NOT events_owed(d.status, d.next_attempt_at) THEN
    RAISE EXCEPTION 'delivery % is %', p_delivery, d.status USING ERRCODE = 'EVD03';
  END IF;
  UPDATE events_delivery SET status = 'done', done_at = clock_timestamp(), updated_at = clock_timestamp(),
         last_error = '', running_since = NULL, parked_at = NULL WHERE id = p_delivery;
  WITH parked AS (SELECT id FROM events_delivery WHERE status = 'parked' AND park_correlation = e.correlation_id
                    AND park_event IN ('*', e.name)
                  ORDER BY updated_at, id LIMIT p_wake FOR UPDATE SKIP LOCKED),
       w AS (UPDATE events_delivery x SET status = 'pending', sent_at = now(), updated_at = now() FROM parked
             WHERE x.id = parked.id RETURNING x.id, x.queue)
  SELECT coalesce(jsonb_agg(jsonb_build_array(w.id, w.queue)), '[]'::jsonb) INTO woken FROM w;
  PERFORM set_config('synchronous_commit', 'off', true);
  RETURN woken::text;
END $$;
"""

DROP = """
DROP FUNCTION IF EXISTS events_claim(bigint);
DROP FUNCTION IF EXISTS events_run_lock(bigint, text);
DROP FUNCTION IF EXISTS events_lock_correlation(text, boolean);
""" + import_module("events.migrations.0005_runs_counted_one_lock_order").CREATE


class Migration(migrations.Migration):
    dependencies = [("events", "0005_runs_counted_one_lock_order")]

    operations = [
        migrations.AddField(
            model_name="delivery", name="park_event",
            field=models.CharField(blank=True, db_default="", max_length=100,
                                   help_text="parked: the event it waits for in its correlation (* any)")),
        migrations.AddField(
            model_name="delivery", name="park_correlation",
            field=models.CharField(blank=True, db_default="", max_length=64,
                                   help_text="parked: the correlation id of what it waits for")),
        migrations.AddField(
            model_name="delivery", name="parked_at",
            field=models.DateTimeField(blank=True, null=True,
                                       help_text="when it was first parked (dead-lettered after EVENTS_PARK_MAX_SECONDS)")),
        migrations.AddIndex(
            model_name="delivery",
            index=models.Index(fields=["park_correlation", "park_event"], name="events_delivery_parked",
                               condition=Q(status="parked"))),
        migrations.RunSQL(CREATE, DROP),
    ]
