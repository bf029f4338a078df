"""FHIR R4 ``Questionnaire`` and ``QuestionnaireResponse`` resources (read-only).

Four questionnaires as the registry asks them: pain VAS, EQ-5D-3L, EQ-5D-5L (each with the EQ
VAS) and ODI v2.1a, with the English wording of ``outcomes.questionnaire.items``. Every stored
response becomes one ``QuestionnaireResponse`` per instrument answered in it (id
``<response id>-vas``, ``-eq5d`` or ``-odi``), with the answers as the registry's codes and the
scores it computed (EQ-5D index with its value set, ODI %) as read-only calculated items. The
subject is ``Patient/<registry id>``: pseudonymous, no Patient resource is served.

LOINC codes (system ``http://loinc.org``) are attached only where a LOINC term was found in a
public source and its name matches the item as we ask it (instrument version, recall period,
scale): the ODI panel 97908-8 as the ``odi`` Questionnaire's ``code`` and the ODI score 97909-6
as the ``odi_score`` item's ``code`` (``LOINC_PANELS`` and ``LOINC_ITEMS`` below, each with its
source). Nothing else carries a LOINC code: no LOINC term was found for the ten ODI sections
(the panel's one member found is the score) nor for any part of the EQ-5D-3L/5L (the FHIR
guides that model it use SNOMED CT or local codes), and LOINC's pain VAS term 38214-3 is pain
severity unqualified, not our worst pain in the last week. No LOINC answer (LA) codes either:
no coded item has an answer list. The table of every item and why it has or has not a code is
in ``docs/import-export.md``. Every item keeps the registry's own identity (``linkId`` = the
export's column name, answers in the registry's code systems), listed in
``/api/v1/exports/dictionary.csv``; QuestionnaireResponses refer to items by ``linkId`` only
(R4 has no ``code`` there), so a consumer finds the codes in the Questionnaire.
"""

from __future__ import annotations

import datetime
from decimal import Decimal
from typing import NamedTuple

from django.conf import settings
from django.db.models import Q
from django.utils import translation
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api.services import export_log_read
from api.views import logged_filters
from outcomes.models import EQ5D_FIELDS, ODI_FIELDS, QuestionnaireResponse
from outcomes.questionnaire import items

BASE = "https://registry.invalid/fhir"  # canonical URLs are names, not addresses to fetch
CODE_SYSTEM = f"{BASE}/CodeSystem/registry-items"
LOINC_SYSTEM = "http://loinc.org"
VERSION = "2"  # 2: LOINC codes on the ODI; bump whenever a Questionnaire's content changes


class Loinc(NamedTuple):
    code: str
    display: str  # LOINC's long common name


# Questionnaire id -> its LOINC panel. Each checked against the term's loinc.org page and a
# public FHIR Questionnaire using it; what has no code, and why: docs/import-export.md.
LOINC_PANELS: dict[str, Loinc] = {
    # https://loinc.org/97908-8 (PANEL.SURVEY.GNHLTH; "versions of the ODI differ in sections
    # assessed", so it covers v2.1a); used as Questionnaire.code by paciowg/sample-data-fsh,
    # input/fsh/EX_jd1_questionnaire-odi.fsh. Its only member is the score 97909-6.
    "odi": Loinc("97908-8", "Oswestry Disability Index"),
}
# (Questionnaire id, linkId) -> its LOINC term; keyed by questionnaire too because the EQ-5D-3L
# and -5L share linkIds but would not share codes.
LOINC_ITEMS: dict[tuple[str, str], Loinc] = {
    # https://loinc.org/97909-6: Score, Pt, Qn, method ODI, "reported as a percent" (sum of the
    # section scores / maximum possible × 100), which is our odi_score; item code of the
    # calculated score in paciowg/sample-data-fsh (same file as above).
    ("odi", "odi_score"): Loinc("97909-6", "Oswestry disability index score ODI"),
}
LOINC_COPYRIGHT = (
    "This material contains content from LOINC (http://loinc.org). LOINC is copyright © "
    "Regenstrief Institute, Inc. and the Logical Observation Identifiers Names and Codes "
    "(LOINC) Committee and is available at no cost under the license at http://loinc.org/license."
)


def _url(name: str) -> str:
    return f"{BASE}/Questionnaire/{name}"


def _integer_item(link_id: str, text: str, low: int, high: int) -> dict:
    return {
        "linkId": link_id,
        "text": text,
        "type": "integer",
        "required": False,
        "extension": [
            {"url": "http://hl7.org/fhir/StructureDefinition/minValue", "valueInteger": low},
            {"url": "http://hl7.org/fhir/StructureDefinition/maxValue", "valueInteger": high},
        ],
    }


def _choice_item(link_id: str, text: str, choices: list[tuple[int, str]]) -> dict:
    return {
        "linkId": link_id,
        "text": text,
        "type": "choice",
        "required": False,
        "answerOption": [
            {"valueCoding": {"system": f"{CODE_SYSTEM}/{link_id}", "code": str(v), "display": t}}
            for v, t in choices
        ],
    }


def _calculated(link_id: str, text: str) -> dict:
    return {"linkId": link_id, "text": text, "type": "decimal", "readOnly": True}


def _loinc_codes(term: Loinc) -> list[dict]:
    return [{"system": LOINC_SYSTEM, "code": term.code, "display": term.display}]


def _questionnaire(name: str, title: str, item: list[dict]) -> dict:
    resource = {
        "resourceType": "Questionnaire",
        "id": name,
        "url": _url(name),
        "version": VERSION,
        "name": name.replace("-", "_").upper(),
        "title": title,
        "status": "active",
        "subjectType": ["Patient"],
        "item": item,
    }
    for entry in item:
        if (name, entry["linkId"]) in LOINC_ITEMS:
            entry["code"] = _loinc_codes(LOINC_ITEMS[name, entry["linkId"]])
    if name in LOINC_PANELS:
        resource["code"] = _loinc_codes(LOINC_PANELS[name])
    if "code" in resource or any("code" in entry for entry in item):
        resource["copyright"] = LOINC_COPYRIGHT
    return resource


def questionnaires() -> list[dict]:
    """The four questionnaires, in English."""
    with translation.override("en"):
        vas = _questionnaire(
            "pain-vas",
            "Pain VAS (worst back pain in the last week, 0–100 mm)",
            [_integer_item("vas_pain", str(items.VAS_QUESTION), 0, 100)],
        )
        eq5d = []
        for levels in (3, 5):
            dimensions = [
                _choice_item(f"eq5d_{name}", str(heading), items.eq5d_choices(name, levels))
                for name, heading, _three, _five in items.EQ5D_DIMENSIONS
            ]
            eq5d.append(
                _questionnaire(
                    f"eq-5d-{levels}l",
                    f"EQ-5D-{levels}L",
                    [
                        *dimensions,
                        _integer_item("eq_vas", str(items.EQ_VAS_QUESTION), 0, 100),
                        _calculated("eq5d_index", "EQ-5D index (value set in eq5d_value_set)"),
                        {
                            "linkId": "eq5d_value_set",
                            "text": "Value set of the index",
                            "type": "string",
                            "readOnly": True,
                        },
                    ],
                )
            )
        odi = _questionnaire(
            "odi",
            "Oswestry Disability Index v2.1a",
            [
                *(
                    _choice_item(f"odi_{name}", str(heading), items.odi_choices(name))
                    for name, heading, _answers in items.ODI_SECTIONS
                ),
                _calculated("odi_score", "ODI (%)"),
            ],
        )
    return [vas, *eq5d, odi]


INSTRUMENTS = ("vas", "eq5d", "odi")


def questionnaire_of(response: QuestionnaireResponse, instrument: str) -> str:
    if instrument == "eq5d":
        return _url(f"eq-5d-{response.eq5d_version.lower()}")
    return _url({"vas": "pain-vas", "odi": "odi"}[instrument])


def instruments_answered(response: QuestionnaireResponse) -> list[str]:
    answered = []
    if response.vas_pain is not None:
        answered.append("vas")
    if response.eq5d_version:
        answered.append("eq5d")
    if any(getattr(response, f) is not None for f in ODI_FIELDS):
        answered.append("odi")
    return answered


def _coding(link_id: str, value: int) -> dict:
    return {"valueCoding": {"system": f"{CODE_SYSTEM}/{link_id}", "code": str(value)}}


def _answer_items(response: QuestionnaireResponse, instrument: str) -> list[dict]:
    result = []

    def add(link_id: str, answer: dict | None) -> None:
        if answer is not None:
            result.append({"linkId": link_id, "answer": [answer]})

    if instrument == "vas":
        add("vas_pain", {"valueInteger": response.vas_pain})
    elif instrument == "eq5d":
        for name in EQ5D_FIELDS:
            add(name, _coding(name, getattr(response, name)))
        if response.eq_vas is not None:
            add("eq_vas", {"valueInteger": response.eq_vas})
        if response.eq5d_index is not None:
            add("eq5d_index", {"valueDecimal": _number(response.eq5d_index)})
            add("eq5d_value_set", {"valueString": response.eq5d_value_set})
    else:
        for name in ODI_FIELDS:
            value = getattr(response, name)
            if value is not None:
                add(name, _coding(name, value))
        if response.odi_score is not None:
            add("odi_score", {"valueDecimal": _number(response.odi_score)})
    return result


def _number(value: Decimal) -> float:
    return float(value)


def questionnaire_response(response: QuestionnaireResponse, instrument: str) -> dict:
    """One instrument of ``response`` as a FHIR R4 QuestionnaireResponse (``procedure`` and
    its ``patient`` selected)."""
    return {
        "resourceType": "QuestionnaireResponse",
        "id": f"{response.pk}-{instrument}",
        "meta": {"lastUpdated": _instant(response.updated_at)},
        "identifier": {"system": f"{BASE}/response", "value": f"{response.pk}-{instrument}"},
        "questionnaire": questionnaire_of(response, instrument),
        "status": "completed",
        "subject": {
            "reference": f"Patient/{response.procedure.patient.registry_id}",
            "display": response.procedure.patient.registry_id,
        },
        "authored": response.answered_on.isoformat(),
        "item": _answer_items(response, instrument),
    }


def _instant(moment: datetime.datetime) -> str:
    return moment.astimezone(datetime.UTC).isoformat().replace("+00:00", "Z")


def bundle(entries: list[dict], *, self_url: str, next_url: str | None) -> dict:
    links = [{"relation": "self", "url": self_url}]
    if next_url:
        links.append({"relation": "next", "url": next_url})
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "link": links,
        "entry": [
            {
                "fullUrl": f"{BASE}/{entry['resourceType']}/{entry['id']}",
                "resource": entry,
                "search": {"mode": "match"},
            }
            for entry in entries
        ],
    }


def page_size(raw: str | None) -> int:
    if raw in (None, ""):
        return settings.REST_FRAMEWORK["PAGE_SIZE"]
    size = int(raw)  # ValueError: the view answers 400
    if not 1 <= size <= 1000:
        raise ValueError("_count is 1 to 1000")
    return size


# --- the views ------------------------------------------------------------------------------

SEARCH_PARAMETERS = {"_lastUpdated", "questionnaire", "subject", "_count", "_page_after", "_format"}
PREFIXES = ("ge", "gt", "le", "lt", "eq")


# FHIR JSON by default; plain JSON for a client that asks for it (Accept or ?format=json).
FHIR_RESPONSES = {
    (status, media_type): OpenApiTypes.OBJECT
    for status in (200, 400, 401, 403, 404, 406, 429)
    for media_type in ("application/fhir+json", "application/json")
}


class FHIRRenderer(JSONRenderer):
    media_type = "application/fhir+json"
    format = "fhir"


def _outcome(message: str, status: int = 400) -> Response:
    body = {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "error", "code": "invalid", "diagnostics": message}],
    }
    return Response(body, status=status)


def _last_updated(queryset, value: str):
    prefix = value[:2] if value[:2] in PREFIXES else "eq"
    text = value[2:] if value[:2] in PREFIXES else value
    try:
        if len(text) == 10:
            start = datetime.datetime.combine(
                datetime.date.fromisoformat(text), datetime.time(0), tzinfo=datetime.UTC
            )
            end = start + datetime.timedelta(days=1)
        else:
            start = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
            if start.tzinfo is None:
                raise ValueError("a time needs its offset")
            end = start + datetime.timedelta(microseconds=1)
    except ValueError as error:
        raise ValueError(
            f"_lastUpdated: {value!r} is not [ge|gt|le|lt|eq]YYYY-MM-DD or an ISO 8601 time "
            f"with offset ({error})"
        ) from None
    lookups = {
        "ge": {"updated_at__gte": start},
        "gt": {"updated_at__gte": end},
        "le": {"updated_at__lt": end},
        "lt": {"updated_at__lt": start},
        "eq": {"updated_at__gte": start, "updated_at__lt": end},
    }
    return queryset.filter(**lookups[prefix])


def _by_questionnaire(queryset, value: str) -> tuple:
    name = value.rstrip("/").rsplit("/", 1)[-1].split("|")[0]
    if name == "pain-vas":
        return queryset.filter(vas_pain__isnull=False), "vas"
    if name in ("eq-5d-3l", "eq-5d-5l"):
        return queryset.filter(eq5d_version=name[-2:].upper()), "eq5d"
    if name == "odi":
        any_odi = Q()
        for field_name in ODI_FIELDS:
            any_odi |= Q(**{f"{field_name}__isnull": False})
        return queryset.filter(any_odi), "odi"
    raise ValueError(f"questionnaire: {value!r} is not one of pain-vas, eq-5d-3l, eq-5d-5l, odi")


class QuestionnaireView(APIView):
    """FHIR R4 Questionnaires of the pain VAS, EQ-5D-3L, EQ-5D-5L and ODI, as a searchset
    Bundle."""

    permission_model = QuestionnaireResponse
    renderer_classes = [FHIRRenderer, JSONRenderer]

    @extend_schema(responses=FHIR_RESPONSES)
    def get(self, request: Request) -> Response:
        resources = questionnaires()
        export_log_read(
            user=request.user, resource="fhir/Questionnaire", filters={}, rows=len(resources)
        )
        return Response(bundle(resources, self_url=request.build_absolute_uri(), next_url=None))


class QuestionnaireResponseView(APIView):
    """FHIR R4 QuestionnaireResponses (one per instrument answered), a searchset Bundle paged
    in id order. Search: ``_lastUpdated`` ([ge|gt|le|lt|eq] date or time, repeatable),
    ``questionnaire`` (pain-vas, eq-5d-3l, eq-5d-5l, odi or their canonical URL),
    ``subject`` (Patient/<registry id>), ``_count`` (1–1000); follow the ``next`` link."""

    permission_model = QuestionnaireResponse
    renderer_classes = [FHIRRenderer, JSONRenderer]

    @extend_schema(responses=FHIR_RESPONSES)
    def get(self, request: Request) -> Response:
        params = request.query_params
        # ``format`` is the API's content negotiation (?format=json), not a search parameter.
        unknown = sorted(set(params) - SEARCH_PARAMETERS - {"format"})
        if unknown:
            return _outcome(f"unsupported search parameter(s): {', '.join(unknown)}")
        queryset = QuestionnaireResponse.objects.for_user(request.user)
        instruments = INSTRUMENTS
        try:
            size = page_size(params.get("_count"))
            for value in params.getlist("_lastUpdated"):
                queryset = _last_updated(queryset, value)
            if params.get("questionnaire"):
                queryset, instrument = _by_questionnaire(queryset, params["questionnaire"])
                instruments = (instrument,)
            if params.get("subject"):
                registry_id = params["subject"].removeprefix("Patient/")
                queryset = queryset.filter(procedure__patient__registry_id=registry_id)
            if params.get("_page_after"):
                queryset = queryset.filter(pk__gt=int(params["_page_after"]))
        except ValueError as error:
            return _outcome(str(error))
        rows = list(queryset.select_related("procedure__patient").order_by("pk")[: size + 1])
        more = len(rows) > size
        rows = rows[:size]
        entries = [
            questionnaire_response(row, instrument)
            for row in rows
            for instrument in instruments_answered(row)
            if instrument in instruments
        ]
        next_url = None
        if more:
            query = params.copy()
            query["_page_after"] = str(rows[-1].pk)
            next_url = request.build_absolute_uri(f"{request.path}?{query.urlencode()}")
        export_log_read(
            user=request.user,
            resource="fhir/QuestionnaireResponse",
            filters=logged_filters(request),
            rows=len(entries),
        )
        return Response(bundle(entries, self_url=request.build_absolute_uri(), next_url=next_url))
