"""Integration tasks: MQTT publishing, the mobile GraphQL pipeline, partner APIs and bulk sync.

Its tasks land with their domain issue; until then the registry tests list them as expected.
"""
