"""Health of the running registry: liveness, readiness, and the operations panel."""
