"""Writes of the accounts app, one module per concept; import from the module (``accounts.services.tokens``)."""
