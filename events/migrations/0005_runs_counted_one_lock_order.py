from importlib import import_module

from django.db import migrations, models

# How a delivery runs, in SQL (events.delivery drives it). One definition of "owed" (events_owed) used by every
# function here and by events.delivery; no prepared statements (a pooler in transaction mode cannot keep them:
# PL/pgSQL caches its plans per server session, which is safe behind PgBouncer).
#
# Lock order, both paths: the run lock (a transaction-level advisory lock on the delivery, only ever TRIED, never
# waited for), then whatever the consumer locks, then the delivery row (events_finish, at the end). A second run of
# a delivery whose first run holds the run lock skips; two runs that got past it (the first had not yet taken it)
# meet at the delivery row, where the second waits for the first to commit and is then refused (EVD03).
#
# A run from the log first commits ``running_since`` (events_begin). The next run that finds it set while nobody
# holds the run lock knows the earlier run died (killed, out of memory, hard time limit) and counts it as a failed
# attempt; after EVENTS_MAX_ATTEMPTS the delivery is dead-lettered with that reason.
CREATE = r"""
CREATE OR REPLACE FUNCTION events_owed(p_status text, p_next_attempt_at timestamptz) RETURNS boolean
LANGUAGE sql STABLE AS $$
  SELECT p_status = 'pending' OR (p_status = 'retrying' AND (p_next_attempt_at IS NULL
                                                             OR p_next_attempt_at <= clock_timestamp()))
$$;

CREATE OR REPLACE FUNCTION events_run_lock(p_delivery bigint) RETURNS boolean LANGUAGE sql AS $$
  SELECT pg_try_advisory_xact_lock(1163281473, (p_delivery % 2147483647)::integer)
$$;

CREATE OR REPLACE FUNCTION events_begin(p_delivery bigint, p_max integer) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  d events_delivery%ROWTYPE;
  err text;
BEGIN
  SELECT * INTO d FROM events_delivery WHERE id = p_delivery FOR UPDATE;
  IF NOT FOUND THEN
    RETURN 'missing';
  END IF;
  IF NOT events_owed(d.status, d.next_attempt_at) THEN
    RETURN d.status;
  END IF;
  IF NOT events_run_lock(p_delivery) THEN
    RETURN 'running';
  END IF;
  IF d.running_since IS NOT NULL THEN
    err := format('the run begun at %s did not finish (its worker was killed, ran out of memory or hit the hard '
                  'time limit)', d.running_since);
    IF d.failures + 1 >= p_max THEN
      UPDATE events_delivery SET status = 'dead', failures = failures + 1, last_error = err, running_since = NULL,
             updated_at = clock_timestamp() WHERE id = p_delivery;
      RETURN 'exhausted';
    END IF;
    UPDATE events_delivery SET failures = failures + 1, last_error = err WHERE id = p_delivery;
  END IF;
  UPDATE events_delivery SET running_since = clock_timestamp() WHERE id = p_delivery;
  RETURN 'go';
END $$;

CREATE OR REPLACE FUNCTION events_claim(p_delivery bigint) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  d events_delivery%ROWTYPE;
  e events_outboxevent%ROWTYPE;
BEGIN
  IF NOT events_run_lock(p_delivery) THEN
    RETURN json_build_object('was', 'running')::text;
  END IF;
  SELECT * INTO d FROM events_delivery WHERE id = p_delivery;
  IF NOT FOUND THEN
    RETURN json_build_object('was', NULL)::text;
  END IF;
  IF NOT events_owed(d.status, d.next_attempt_at) THEN
    RETURN json_build_object('was', d.status)::text;
  END IF;
  SELECT * INTO e FROM events_outboxevent WHERE id = d.event_id;
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
  SELECT * INTO d FROM events_delivery WHERE id = p_delivery FOR UPDATE;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'delivery % does not exist', p_delivery USING ERRCODE = 'EVD01';
  END IF;
  IF p_event IS NOT NULL THEN  -- NULL: the run read its event from the log
    SELECT * INTO e FROM events_outboxevent WHERE id = d.event_id;
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
         last_error = '', running_since = NULL WHERE id = p_delivery;
  WITH parked AS (SELECT id FROM events_delivery WHERE status = 'parked' ORDER BY updated_at, id LIMIT p_wake
                  FOR UPDATE SKIP LOCKED),
       w AS (UPDATE events_delivery x SET status = 'pending', sent_at = now(), updated_at = now() FROM parked
             WHERE x.id = parked.id RETURNING x.id, x.queue)
  SELECT coalesce(jsonb_agg(jsonb_build_array(w.id, w.queue)), '[]'::jsonb) INTO woken FROM w;
  PERFORM set_config('synchronous_commit', 'off', true);
  RETURN woken::text;
END $$;
"""

DROP = """
DROP FUNCTION IF EXISTS events_claim(bigint);
DROP FUNCTION IF EXISTS events_begin(bigint, integer);
DROP FUNCTION IF EXISTS events_run_lock(bigint);
DROP FUNCTION IF EXISTS events_owed(text, timestamptz);
""" + import_module("events.migrations.0004_finish_function").CREATE


class Migration(migrations.Migration):
    dependencies = [("events", "0004_finish_function")]

    operations = [
        migrations.AddField(
            model_name="delivery",
            name="running_since",
            field=models.DateTimeField(
                blank=True, null=True,
                help_text="when the current run from the event log began (cleared when it ends; found set by the "
                          "next run, it counts as a failed attempt: the run died)"),
        ),
        migrations.RunSQL(CREATE, DROP),
    ]
