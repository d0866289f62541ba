"""Accounts: users, their passwords and tokens, what admins do to them, and the audit log."""
