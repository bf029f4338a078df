"""Core clinical models and admin of the vertebral augmentation registry.

Imports point one way: ``registry`` never imports ``outcomes`` or ``api``.
"""
