"""E-mail tasks: work-permit and SLA notifications, reminders and NOC mismatch alerts.

Its tasks land with their domain issue; until then the registry tests list them as expected.
"""
