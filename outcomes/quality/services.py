"""Running the data-quality rules (nightly and on demand) and reading their latest results."""

from __future__ import annotations

import csv
import datetime
import io
from dataclasses import dataclass

from django.db import transaction
from django.db.models import F, Window
from django.db.models.functions import RowNumber
from django.utils import timezone

from outcomes.quality.models import QualityFinding, QualityRun
from outcomes.quality.rules import RULES, RULES_BY_ID
from registry.models import Site
from registry.validation import site_today

KEEP_RUNS = datetime.timedelta(days=60)


@transaction.atomic
def quality_run(*, sites=None, user=None, now: datetime.datetime | None = None) -> list:
    """Run every rule at each of ``sites`` (all sites by default) and store the findings as a
    new run per site; returns the runs. Idempotent in effect: a later run supersedes."""
    now = now or timezone.now()
    runs = []
    for site in sites if sites is not None else Site.objects.all():
        run = QualityRun.objects.create(site=site, started_at=now, requested_by=user)
        today = site_today(site.time_zone, now)
        one_site = Site.objects.filter(pk=site.pk)
        findings = []
        for rule in RULES:
            records = list(rule.query(one_site, today))
            run.counts[rule.id] = len(records)
            findings.extend(
                QualityFinding(
                    run=run,
                    rule_id=rule.id,
                    model=record._meta.label_lower,
                    object_id=record.pk,
                    record_label=str(record)[:200],
                )
                for record in records
            )
        QualityFinding.objects.bulk_create(findings, batch_size=1000)
        run.finished_at = timezone.now()
        run.save(update_fields=["counts", "finished_at"])
        # Keep two months of runs per site; the page and the CSV read only the latest.
        QualityRun.objects.filter(site=site, started_at__lt=now - KEEP_RUNS).delete()
        runs.append(run)
    return runs


def latest_runs(sites) -> list[QualityRun]:
    """The latest finished run of each of ``sites`` (sites never checked are left out), with
    its site and who asked for it."""
    return list(
        QualityRun.objects.filter(site__in=sites, finished_at__isnull=False)
        .order_by("site_id", "-started_at", "-pk")
        .distinct("site_id")
        .select_related("site", "requested_by")
    )


FINDINGS_SHOWN = 100  # records listed per rule and site on the page; the CSV has them all


def findings_shown(runs: list[QualityRun], per_rule: int = FINDINGS_SHOWN) -> dict[int, list]:
    """The first ``per_rule`` findings of each rule of each run (in the findings' order), by
    run id, in one query: the page's cost follows what it lists, not how many records a rule
    found at a national registry (the count of each rule is the run's own)."""
    if not runs:
        return {}
    ranked = (
        QualityFinding.objects.filter(run__in=runs)
        .annotate(
            rank=Window(
                RowNumber(),
                partition_by=[F("run_id"), F("rule_id")],
                order_by=[F("record_label").asc(), F("object_id").asc()],
            )
        )
        .filter(rank__lte=per_rule)
        .order_by("run_id", "rule_id", "record_label", "object_id")
    )
    by_run: dict[int, list] = {run.pk: [] for run in runs}
    for finding in ranked:
        by_run[finding.run_id].append(finding)
    return by_run


@dataclass(frozen=True)
class RuleCount:
    rule: object
    count: int
    findings: list


def run_summary(run: QualityRun, findings: list | None = None) -> list[RuleCount]:
    """Each rule's count in ``run`` with its findings: ``findings`` when given (the page's
    first few, from ``findings_shown``), else every finding of the run."""
    by_rule: dict[str, list] = {}
    for finding in run.findings.all() if findings is None else findings:
        by_rule.setdefault(finding.rule_id, []).append(finding)
    return [
        RuleCount(rule=rule, count=run.counts.get(rule.id, 0), findings=by_rule.get(rule.id, []))
        for rule in RULES
    ]


CSV_COLUMNS = [
    "site",
    "run_at",
    "rule",
    "severity",
    "message_en",
    "message_da",
    "record_type",
    "record_id",
    "record",
]


def findings_csv(runs: list[QualityRun]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_COLUMNS)
    for run in runs:
        for finding in run.findings.all():
            rule = RULES_BY_ID[finding.rule_id]
            writer.writerow(
                [
                    run.site.code,
                    run.started_at.isoformat(),
                    rule.id,
                    rule.severity,
                    rule.message_en,
                    rule.message_da,
                    finding.model,
                    finding.object_id,
                    finding.record_label,
                ]
            )
    return out.getvalue()
