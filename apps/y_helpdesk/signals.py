"""What the helpdesk tells the apps above it, which it does not know."""

from django.dispatch import Signal

# Sent inside the transaction that escalates them, with `tickets`: a queryset of the tickets
# moved up one level by this run. The escalation runs as set-based updates, so no save signal
# says it.
tickets_escalated = Signal()

# Sent inside the transaction that auto-closes them (apps.y_helpdesk.autoclose), with
# `jobneeds`: a queryset of the jobneeds closed by this run (not their checkpoints).
jobneeds_autoclosed = Signal()
