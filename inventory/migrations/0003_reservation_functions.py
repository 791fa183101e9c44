from django.db import migrations

# The reservation's two hot statements as PL/pgSQL functions (inventory.services), so PostgreSQL keeps their plans
# per session instead of parsing, analysing and planning them on every call (what payments_charge measured:
# 0.84 -> 0.48 ms of PostgreSQL CPU for a statement of that size).
#
# inventory_reservation_claim: claim the order's reservation (INSERT ... ON CONFLICT DO NOTHING: a concurrent claim
# of the same order waits on the unique index, then backs off) and, only if claimed, lock the instance's products
# among p_ids in pk order (the LATERAL subquery names the claim so it runs only for a claimed row; FOR UPDATE locks
# in its ORDER BY; the lock order stays reservation, then products, as in the release) and read the order's price
# quote. One row per locked product; one row with a NULL product when none was found; no row when the order was
# claimed already.
#
# inventory_reservation_move: move the order's reservation from p_from to p_to (and its reason unless p_reason is
# NULL) and, only if it moved, its lines' units by the signs: the lines summed per product, those of the
# instance's products still there locked in pk order (the order the claim locks in, so concurrent movements never
# deadlock), then moved. Returns how many reservations moved (0 or 1) and how many products.
CREATE = """
CREATE OR REPLACE FUNCTION inventory_reservation_claim(
    p_instance bigint, p_order bigint, p_status text, p_currency text, p_now timestamptz, p_ids bigint[])
RETURNS TABLE (reservation_id bigint, product_id bigint, price numeric, currency text, available bigint,
               quote_lines jsonb)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
  RETURN QUERY
  WITH claim AS (
      INSERT INTO inventory_reservation (instance_id, order_id, status, lines, amount, currency, reason, created_at,
                                         updated_at)
      VALUES (p_instance, p_order, p_status, '[]'::jsonb, 0, p_currency, '', p_now, p_now)
      ON CONFLICT (instance_id, order_id) DO NOTHING RETURNING id)
  SELECT claim.id, p.id, p.price, p.currency::text, (p.stock_on_hand - p.stock_reserved)::bigint,
         (SELECT q.lines FROM inventory_pricequote q WHERE q.instance_id = p_instance AND q.order_id = p_order)
  FROM claim LEFT JOIN LATERAL (
      SELECT pr.id, pr.price, pr.currency, pr.stock_on_hand, pr.stock_reserved FROM inventory_product pr
      WHERE pr.instance_id = p_instance AND pr.id = ANY(p_ids) AND claim.id IS NOT NULL
      ORDER BY pr.id FOR UPDATE) AS p ON true;
END $$;

CREATE OR REPLACE FUNCTION inventory_reservation_move(
    p_instance bigint, p_order bigint, p_from text, p_to text, p_reason text, p_on_hand integer,
    p_reserved integer)
RETURNS TABLE (moved bigint, products bigint)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
BEGIN
  RETURN QUERY
  WITH r AS (
      UPDATE inventory_reservation SET status = p_to, reason = COALESCE(p_reason, inventory_reservation.reason)
      WHERE instance_id = p_instance AND order_id = p_order AND status = p_from RETURNING lines),
  moving AS (
      SELECT (line ->> 'product_id')::bigint AS id, sum((line ->> 'quantity')::integer) AS quantity
      FROM r, jsonb_array_elements(r.lines) AS line GROUP BY 1),
  locked AS (
      SELECT pr.id FROM inventory_product pr WHERE pr.instance_id = p_instance AND pr.id IN (SELECT id FROM moving)
      ORDER BY pr.id FOR UPDATE),
  done AS (
      UPDATE inventory_product AS p SET stock_on_hand = p.stock_on_hand + p_on_hand * moving.quantity,
                                        stock_reserved = p.stock_reserved + p_reserved * moving.quantity
      FROM moving JOIN locked ON locked.id = moving.id WHERE p.id = moving.id RETURNING p.id)
  SELECT (SELECT count(*) FROM r), (SELECT count(*) FROM done);
END $$;
"""

DROP = """
DROP FUNCTION IF EXISTS inventory_reservation_claim(bigint, bigint, text, text, timestamptz, bigint[]);
DROP FUNCTION IF EXISTS inventory_reservation_move(bigint, bigint, text, text, text, integer, integer);
"""


class Migration(migrations.Migration):

    dependencies = [
        ("inventory", "0002_price_quote"),
    ]

    operations = [migrations.RunSQL(CREATE, DROP)]
