"""What the jobs app tells the apps above it, which it does not know."""

from django.dispatch import Signal

# Sent inside the transaction that auto-closes them, with `jobneeds`: a queryset of the jobneeds
# closed by this run (not their checkpoints).
jobneeds_autoclosed = Signal()
