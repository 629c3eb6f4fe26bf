"""Price audits: `faregate audit` and `scripts/audit_prices.py` (DESIGN "Scripts")."""
