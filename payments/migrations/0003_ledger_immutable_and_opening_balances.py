"""Ledger rows cannot be updated or deleted (a trigger, whatever the client), and every existing wallet balance gets
an opening top-up transaction so the ledger explains it from the start."""

from decimal import Decimal

from django.db import migrations

IMMUTABLE = """
CREATE OR REPLACE FUNCTION payments_ledger_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'ledger rows are immutable (% on %)', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'restrict_violation';
END $$;
CREATE TRIGGER payments_ledgertransaction_immutable BEFORE UPDATE OR DELETE ON payments_ledgertransaction
    FOR EACH ROW EXECUTE FUNCTION payments_ledger_immutable();
CREATE TRIGGER payments_ledgerentry_immutable BEFORE UPDATE OR DELETE ON payments_ledgerentry
    FOR EACH ROW EXECUTE FUNCTION payments_ledger_immutable();
"""

MUTABLE = """
DROP TRIGGER IF EXISTS payments_ledgerentry_immutable ON payments_ledgerentry;
DROP TRIGGER IF EXISTS payments_ledgertransaction_immutable ON payments_ledgertransaction;
DROP FUNCTION IF EXISTS payments_ledger_immutable();
"""


def opening_balances(apps, schema_editor):
    wallet_model = apps.get_model("payments", "Wallet")
    transaction_model = apps.get_model("payments", "LedgerTransaction")
    entry_model = apps.get_model("payments", "LedgerEntry")
    for wallet in wallet_model.objects.exclude(balance=Decimal("0")).order_by("pk"):
        tx = transaction_model.objects.create(instance_id=wallet.instance_id, kind="top_up", currency=wallet.currency,
                                              reason="opening balance (ledger introduced)")
        entry_model.objects.bulk_create([
            entry_model(transaction=tx, instance_id=wallet.instance_id, account="wallet", wallet=wallet,
                        currency=wallet.currency, amount=wallet.balance),
            entry_model(transaction=tx, instance_id=wallet.instance_id, account="funding", wallet=None,
                        currency=wallet.currency, amount=-wallet.balance),
        ])


class Migration(migrations.Migration):
    dependencies = [("payments", "0002_ledger")]

    operations = [
        migrations.RunPython(opening_balances, migrations.RunPython.noop),
        migrations.RunSQL(IMMUTABLE, MUTABLE),
    ]
