"""The cohort report (design.md §7-8): dataset, tables, statistics, formats, views, urls."""
