"""Ticket tasks: ticket e-mails, escalation and out-of-range reading alerts.

Its tasks land with their domain issue; until then the registry tests list them as expected.
"""
