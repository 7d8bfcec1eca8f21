"""Maintenance tasks: cache warming and clean-ups.

Its tasks land with their domain issue; until then the registry tests list them as expected.
"""
