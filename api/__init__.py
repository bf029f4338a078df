"""Read-only REST API and exports for auditors. May import ``registry`` and ``outcomes``."""
