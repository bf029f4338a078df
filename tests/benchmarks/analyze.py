"""ANALYZE of the project's own tables, as autovacuum would after a benchmark's bulk load.

A bare ``ANALYZE`` also analyses the shared catalogs (``pg_authid`` …) and holds their locks
until the transaction ends: inside a benchmark's test transaction that stalled every other
session's ``CREATE DATABASE`` on the server for minutes (seen with two benchmarks at once)."""

from __future__ import annotations


def analyze_project_tables(cursor) -> None:
    cursor.execute(
        "SELECT string_agg(format('%I.%I', schemaname, tablename), ', ') FROM pg_tables"
        " WHERE schemaname = current_schema()"
    )
    cursor.execute(f"ANALYZE {cursor.fetchone()[0]}")
