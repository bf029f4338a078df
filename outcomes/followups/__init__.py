"""Follow-ups: the schedule (design.md §3), the chasing sweep, sending, messages and links."""
