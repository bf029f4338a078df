"""FHIR R4 ``Questionnaire`` and ``QuestionnaireResponse`` resources (read-only).

Four questionnaires as the registry asks them: pain VAS, EQ-5D-3L, EQ-5D-5L (each with the EQ
VAS) and ODI v2.1a, with the English wording of ``outcomes.questionnaire.items``. Every stored
response becomes one ``QuestionnaireResponse`` per instrument answered in it (id
``<response id>-vas``, ``-eq5d`` or ``-odi``), with the answers as the registry's codes and the
scores it computed (EQ-5D index with its value set, ODI %) as read-only calculated items.

Context, so that a receiving system can tell a baseline answer from a 12-month one and a paper
answer from a web one (docs/import-export.md, "FHIR"): ``subject`` is ``Patient/<registry id>``
and ``partOf`` the ``Procedure/<id>`` the answers follow, both served (pseudonymous: the Patient
carries the registry id only); ``source`` is the patient, who answered in every mode; three
extensions carry the timepoint, the mode and the staff code of who entered paper/phone/clinic
answers (none for web-link answers), each with its code system. Answers are coded in one code
system per instrument version and item (``…/registry-items/eq-5d-3l/eq5d_mobility``: code 3 is
"confined to bed" there and "moderate problems" in ``…/eq-5d-5l/…``), and ``questionnaire`` is
the versioned canonical ``<url>|<version>``.

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
from collections.abc import Iterator
from decimal import Decimal
from typing import NamedTuple

from django.conf import settings
from django.db.models import Prefetch, Q
from django.utils import translation
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework import exceptions
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from api.services import export_log_read
from api.throttling import AnonThrottle
from api.views import logged_filters
from outcomes.models import EQ5D_FIELDS, ODI_FIELDS, QuestionnaireResponse, Timepoint
from outcomes.questionnaire import items
from registry.access import staff_code_of
from registry.models import Patient, Procedure, TreatedLevel

BASE = "https://registry.invalid/fhir"  # canonical URLs are names, not addresses to fetch
CODE_SYSTEM = f"{BASE}/CodeSystem/registry-items"
LOINC_SYSTEM = "http://loinc.org"
# 2: LOINC codes on the ODI; 3: one answer code system per instrument version. Bump whenever
# a Questionnaire's content changes.
VERSION = "3"

# The registry's context of a response, in its own code systems (docs/import-export.md).
TIMEPOINT_SYSTEM = f"{BASE}/CodeSystem/timepoint"
MODE_SYSTEM = f"{BASE}/CodeSystem/response-mode"
TECHNIQUE_SYSTEM = f"{BASE}/CodeSystem/technique"
LEVEL_SYSTEM = f"{BASE}/CodeSystem/vertebral-level"
STAFF_SYSTEM = f"{BASE}/staff-code"
REGISTRY_ID_SYSTEM = f"{BASE}/registry-id"
PROCEDURE_ID_SYSTEM = f"{BASE}/procedure"
TIMEPOINT_EXTENSION = f"{BASE}/StructureDefinition/timepoint"
MODE_EXTENSION = f"{BASE}/StructureDefinition/response-mode"
ENTERED_BY_EXTENSION = f"{BASE}/StructureDefinition/entered-by"


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


def item_system(questionnaire: str, link_id: str) -> str:
    """The code system of one item's answers in one instrument version (``questionnaire`` is
    the Questionnaire's id: ``eq-5d-3l``, ``eq-5d-5l``, ``odi``)."""
    return f"{CODE_SYSTEM}/{questionnaire}/{link_id}"


def _choice_item(
    questionnaire: str, link_id: str, text: str, choices: list[tuple[int, str]]
) -> dict:
    system = item_system(questionnaire, link_id)
    return {
        "linkId": link_id,
        "text": text,
        "type": "choice",
        "required": False,
        "answerOption": [
            {"valueCoding": {"system": system, "code": str(v), "display": t}} for v, t in choices
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
                _choice_item(
                    f"eq-5d-{levels}l",
                    f"eq5d_{name}",
                    str(heading),
                    items.eq5d_choices(name, levels),
                )
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
                    _choice_item("odi", f"odi_{name}", str(heading), items.odi_choices(name))
                    for name, heading, _answers in items.ODI_SECTIONS
                ),
                _calculated("odi_score", "ODI (%)"),
            ],
        )
    return [vas, *eq5d, odi]


INSTRUMENTS = ("vas", "eq5d", "odi")


def questionnaire_id(response: QuestionnaireResponse, instrument: str) -> str:
    if instrument == "eq5d":
        return f"eq-5d-{response.eq5d_version.lower()}"
    return {"vas": "pain-vas", "odi": "odi"}[instrument]


def questionnaire_of(response: QuestionnaireResponse, instrument: str) -> str:
    """The versioned canonical reference (``<url>|<version>``) of what was answered."""
    return f"{_url(questionnaire_id(response, instrument))}|{VERSION}"


def instruments_answered(response: QuestionnaireResponse) -> list[str]:
    answered = []
    if response.vas_pain is not None:
        answered.append("vas")
    if response.eq5d_version:
        answered.append("eq5d")
    if any(getattr(response, f) is not None for f in ODI_FIELDS):
        answered.append("odi")
    return answered


def _answer_items(response: QuestionnaireResponse, instrument: str) -> list[dict]:
    result = []
    questionnaire = questionnaire_id(response, instrument)

    def _coding(link_id: str, value: int) -> dict:
        return {"valueCoding": {"system": item_system(questionnaire, link_id), "code": str(value)}}

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


def _coded(system: str, code: str, display: str) -> dict:
    return {"system": system, "code": code, "display": display}


def questionnaire_response(response: QuestionnaireResponse, instrument: str) -> dict:
    """One instrument of ``response`` as a FHIR R4 QuestionnaireResponse (``procedure`` and
    its ``patient`` selected), with its context: timepoint, mode and who entered it
    (extensions), the procedure it follows (``partOf``) and the patient who answered."""
    registry_id = response.procedure.patient.registry_id
    patient = {"reference": f"Patient/{registry_id}", "display": registry_id}
    with translation.override("en"):
        extension = [
            {
                "url": TIMEPOINT_EXTENSION,
                "valueCoding": _coded(
                    TIMEPOINT_SYSTEM, response.timepoint, str(Timepoint(response.timepoint).label)
                ),
            },
            {
                "url": MODE_EXTENSION,
                "valueCoding": _coded(
                    MODE_SYSTEM,
                    response.mode,
                    str(QuestionnaireResponse.Mode(response.mode).label),
                ),
            },
        ]
    entered_by = staff_code_of(response.entered_by_id)
    if entered_by is not None:
        extension.append(
            {
                "url": ENTERED_BY_EXTENSION,
                "valueIdentifier": {"system": STAFF_SYSTEM, "value": entered_by},
            }
        )
    return {
        "resourceType": "QuestionnaireResponse",
        "id": f"{response.pk}-{instrument}",
        "meta": {"lastUpdated": _instant(response.updated_at)},
        "extension": extension,
        "identifier": {"system": f"{BASE}/response", "value": f"{response.pk}-{instrument}"},
        "partOf": [{"reference": f"Procedure/{response.procedure_id}"}],
        "questionnaire": questionnaire_of(response, instrument),
        "status": "completed",
        "subject": patient,
        "authored": response.answered_on.isoformat(),
        "source": patient,
        "item": _answer_items(response, instrument),
    }


def patient_resource(patient: Patient) -> dict:
    """A pseudonymous FHIR Patient: the registry id, nothing else (no name, sex or dates)."""
    return {
        "resourceType": "Patient",
        "id": patient.registry_id,
        "meta": {"lastUpdated": _instant(patient.updated_at)},
        "identifier": [{"system": REGISTRY_ID_SYSTEM, "value": patient.registry_id}],
    }


def procedure_resource(procedure: Procedure) -> dict:
    """A FHIR Procedure: technique, date, treated levels and patient (``patient`` selected,
    ``levels`` prefetched). The operator and notes stay home, as in the exports."""
    registry_id = procedure.patient.registry_id
    with translation.override("en"):
        technique = str(Procedure.Technique(procedure.technique).label)
    return {
        "resourceType": "Procedure",
        "id": str(procedure.pk),
        "meta": {"lastUpdated": _instant(procedure.updated_at)},
        "identifier": [{"system": PROCEDURE_ID_SYSTEM, "value": str(procedure.pk)}],
        "status": "completed",
        "code": {
            "coding": [_coded(TECHNIQUE_SYSTEM, procedure.technique, technique)],
            "text": technique,
        },
        "subject": {"reference": f"Patient/{registry_id}", "display": registry_id},
        "performedDateTime": procedure.date.isoformat(),
        "bodySite": [
            {
                "coding": [
                    _coded(LEVEL_SYSTEM, level.get_level_display(), level.get_level_display())
                ],
                "text": level.get_level_display(),
            }
            for level in procedure.levels.all()
        ],
    }


def patients_for(user):
    return Patient.objects.for_user(user)


def procedures_for(user):
    return (
        Procedure.objects.for_user(user)
        .select_related("patient")
        .prefetch_related(Prefetch("levels", TreatedLevel.objects.order_by("level")))
    )


def responses_for(user):
    return QuestionnaireResponse.objects.for_user(user).select_related("procedure__patient")


def response_resources(rows) -> Iterator[dict]:
    """Every instrument answered in ``rows``, as QuestionnaireResponses, in id order."""
    for row in rows:
        for instrument in instruments_answered(row):
            yield questionnaire_response(row, instrument)


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
    try:
        size = int(raw)
    except ValueError:
        raise ValueError(f"_count: {raw!r} is not a whole number") from None
    if not 1 <= size <= 1000:
        raise ValueError("_count is 1 to 1000")
    return size


# --- errors -----------------------------------------------------------------------------------

# HTTP status -> the OperationOutcome issue type (http://hl7.org/fhir/valueset-issue-type.html)
ISSUE_TYPES = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    406: "not-supported",
    410: "deleted",
    429: "throttled",
}


def operation_outcome(message: str, *, code: str = "invalid", severity: str = "error") -> dict:
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": severity, "code": code, "diagnostics": message}],
    }


class FHIRError(exceptions.APIException):
    """A refusal answered as an OperationOutcome with its own HTTP status."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status_code = status


# --- the views ------------------------------------------------------------------------------

PREFIXES = ("ge", "gt", "le", "lt", "eq")
# Always allowed: our paging cursor, the format (``format`` is the API's own ?format=json).
COMMON_PARAMETERS = {"_count", "_page_after", "_format", "format"}


def _is_id(text: str) -> bool:
    """A database id in ASCII digits: ``str.isdigit`` also accepts ``²`` and other digits
    ``int()`` refuses (schemathesis found the 500)."""
    return text.isascii() and text.isdigit()


# _format values that mean JSON (http://hl7.org/fhir/R4/http.html#mime-type); anything else,
# XML and Turtle included, is 406.
JSON_FORMATS = {"json", "application/json", "application/fhir+json"}


# FHIR JSON by default; plain JSON for a client that asks for it (Accept or ?format=json).
def fhir_responses(*success: int) -> dict:
    return {
        (status, media_type): OpenApiTypes.OBJECT
        for status in (*success, 400, 401, 403, 404, 405, 406, 429)
        for media_type in ("application/fhir+json", "application/json")
    }


FHIR_RESPONSES = fhir_responses(200)


class FHIRRenderer(JSONRenderer):
    media_type = "application/fhir+json"
    format = "fhir"


class FHIRView(APIView):
    """A FHIR endpoint: every error an ``OperationOutcome`` in ``application/fhir+json``
    (401, 403, 404, 405, 406 and 429 included), ``_format`` honoured (JSON only: XML is
    406), and unknown search parameters refused unless the client sent
    ``Prefer: handling=lenient`` (http://hl7.org/fhir/R4/search.html#errors)."""

    renderer_classes = [FHIRRenderer, JSONRenderer]
    search_parameters: frozenset[str] = frozenset()

    def initial(self, request: Request, *args, **kwargs) -> None:
        fmt = request.query_params.get("_format")
        if fmt is not None and fmt.split(";")[0].strip().lower() not in JSON_FORMATS:
            raise FHIRError(f"_format: {fmt!r} is not served; this server speaks JSON only", 406)
        super().initial(request, *args, **kwargs)

    def handle_exception(self, exc: Exception) -> Response:
        response = super().handle_exception(exc)
        data = response.data
        if isinstance(data, dict) and data.get("resourceType") == "OperationOutcome":
            return response
        message = data.get("detail", data) if isinstance(data, dict) else data
        response.data = operation_outcome(
            str(message), code=ISSUE_TYPES.get(response.status_code, "processing")
        )
        # The error is FHIR JSON whatever the Accept header asked for (a 406 included).
        request = self.request
        request.accepted_renderer = FHIRRenderer()
        request.accepted_media_type = FHIRRenderer.media_type
        return response

    def lenient(self, request: Request) -> bool:
        prefer = request.headers.get("Prefer", "")
        return "handling=lenient" in prefer.replace(" ", "").lower()

    def search_params(self, request: Request) -> dict[str, list[str]]:
        """The search parameters to apply: unknown ones refused (400), or with
        ``Prefer: handling=lenient`` ignored."""
        params = request.query_params
        unknown = sorted(set(params) - self.search_parameters - COMMON_PARAMETERS)
        if unknown and not self.lenient(request):
            raise FHIRError(
                f"unsupported search parameter(s): {', '.join(unknown)} (supported: "
                f"{', '.join(sorted(self.search_parameters | {'_count'}))}; send "
                "Prefer: handling=lenient to have unknown ones ignored)"
            )
        return {key: params.getlist(key) for key in params if key not in unknown}

    def self_link(self, request: Request, params: dict[str, list[str]]) -> str:
        """The search as done: ignored parameters left out, as FHIR asks of ``self``."""
        query = request.query_params.copy()
        for key in list(query):
            if key not in params:
                del query[key]
        suffix = f"?{query.urlencode()}" if query else ""
        return request.build_absolute_uri(f"{request.path}{suffix}")

    def next_link(self, request: Request, params: dict[str, list[str]], after: str) -> str:
        query = request.query_params.copy()
        for key in list(query):
            if key not in params:
                del query[key]
        query["_page_after"] = after
        return request.build_absolute_uri(f"{request.path}?{query.urlencode()}")


def _last_updated(queryset, value: str, field: str = "updated_at"):
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
        "ge": {f"{field}__gte": start},
        "gt": {f"{field}__gte": end},
        "le": {f"{field}__lt": end},
        "lt": {f"{field}__lt": start},
        "eq": {f"{field}__gte": start, f"{field}__lt": end},
    }
    return queryset.filter(**lookups[prefix])


def _by_questionnaire(queryset, value: str) -> tuple:
    name = value.split("|")[0].rstrip("/").rsplit("/", 1)[-1]
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


def _one(values: list[str], name: str) -> str:
    if len(values) != 1 or not values[0]:
        raise ValueError(f"{name}: give it once, not empty")
    return values[0]


class QuestionnaireView(FHIRView):
    """FHIR R4 Questionnaires of the pain VAS, EQ-5D-3L, EQ-5D-5L and ODI, as a searchset
    Bundle."""

    permission_model = QuestionnaireResponse

    @extend_schema(operation_id="fhir_questionnaire_search", responses=FHIR_RESPONSES)
    def get(self, request: Request) -> Response:
        params = self.search_params(request)
        resources = questionnaires()
        export_log_read(
            user=request.user, resource="fhir/Questionnaire", filters={}, rows=len(resources)
        )
        return Response(bundle(resources, self_url=self.self_link(request, params), next_url=None))


class QuestionnaireReadView(FHIRView):
    """One Questionnaire by id (``pain-vas``, ``eq-5d-3l``, ``eq-5d-5l``, ``odi``)."""

    permission_model = QuestionnaireResponse

    @extend_schema(operation_id="fhir_questionnaire_read", responses=FHIR_RESPONSES)
    def get(self, request: Request, resource_id: str) -> Response:
        found = next((q for q in questionnaires() if q["id"] == resource_id), None)
        if found is None:
            raise FHIRError(f"Questionnaire/{resource_id} is not known", 404)
        return Response(found)


INSTRUMENT_ORDER = {name: i for i, name in enumerate(INSTRUMENTS)}


def _response_cursor(value: str) -> tuple[int, int]:
    pk, _, instrument = value.partition("-")
    if not _is_id(pk) or instrument not in INSTRUMENT_ORDER:
        raise ValueError(f"_page_after: {value!r} is not a QuestionnaireResponse id")
    return int(pk), INSTRUMENT_ORDER[instrument]


class QuestionnaireResponseView(FHIRView):
    """FHIR R4 QuestionnaireResponses (one per instrument answered), a searchset Bundle paged
    in id order, ``_count`` resources a page. Search: ``_lastUpdated`` ([ge|gt|le|lt|eq] date
    or time, repeatable), ``questionnaire`` (pain-vas, eq-5d-3l, eq-5d-5l, odi or their
    canonical URL, with or without ``|version``), ``subject`` (Patient/<registry id>),
    ``part-of`` (Procedure/<id>); follow the ``next`` link."""

    permission_model = QuestionnaireResponse
    search_parameters = frozenset({"_lastUpdated", "questionnaire", "subject", "part-of"})

    @extend_schema(operation_id="fhir_questionnaire_response_search", responses=FHIR_RESPONSES)
    def get(self, request: Request) -> Response:
        params = self.search_params(request)
        queryset = responses_for(request.user)
        instruments = INSTRUMENTS
        after = (0, -1)
        try:
            size = page_size(params.get("_count", [None])[0])
            for value in params.get("_lastUpdated", []):
                queryset = _last_updated(queryset, value)
            if "questionnaire" in params:
                value = _one(params["questionnaire"], "questionnaire")
                queryset, instrument = _by_questionnaire(queryset, value)
                instruments = (instrument,)
            if "subject" in params:
                registry_id = _one(params["subject"], "subject").removeprefix("Patient/")
                queryset = queryset.filter(procedure__patient__registry_id=registry_id)
            if "part-of" in params:
                procedure = _one(params["part-of"], "part-of").removeprefix("Procedure/")
                if not _is_id(procedure):
                    raise ValueError(f"part-of: {procedure!r} is not Procedure/<id>")
                queryset = queryset.filter(procedure_id=int(procedure))
            if "_page_after" in params:
                after = _response_cursor(_one(params["_page_after"], "_page_after"))
        except ValueError as error:
            raise FHIRError(str(error)) from None
        entries = []
        more = False
        cursor_pk = after[0]
        first = True
        # Rows give one to three resources each: fetch rows until the page is full.
        while not more:
            batch = queryset.filter(**{"pk__gte" if first else "pk__gt": cursor_pk})
            rows = list(batch.order_by("pk")[: size + 1])
            for row in rows:
                for instrument in instruments_answered(row):
                    if instrument not in instruments:
                        continue
                    if (row.pk, INSTRUMENT_ORDER[instrument]) <= after:
                        continue
                    if len(entries) == size:
                        more = True
                        break
                    entries.append(questionnaire_response(row, instrument))
                if more:
                    break
            if len(rows) <= size:
                break
            cursor_pk, first = rows[-1].pk, False
        next_url = self.next_link(request, params, entries[-1]["id"]) if more else None
        export_log_read(
            user=request.user,
            resource="fhir/QuestionnaireResponse",
            filters=logged_filters(request),
            rows=len(entries),
        )
        return Response(
            bundle(entries, self_url=self.self_link(request, params), next_url=next_url)
        )


class QuestionnaireResponseReadView(FHIRView):
    """One QuestionnaireResponse by id (``<response id>-vas|eq5d|odi``)."""

    permission_model = QuestionnaireResponse

    @extend_schema(operation_id="fhir_questionnaire_response_read", responses=FHIR_RESPONSES)
    def get(self, request: Request, resource_id: str) -> Response:
        pk, _, instrument = resource_id.partition("-")
        row = None
        if _is_id(pk) and instrument in INSTRUMENTS:
            row = responses_for(request.user).filter(pk=int(pk)).first()
        if row is None or instrument not in instruments_answered(row):
            raise FHIRError(f"QuestionnaireResponse/{resource_id} is not known", 404)
        export_log_read(
            user=request.user,
            resource="fhir/QuestionnaireResponse",
            filters={"id": [resource_id]},
            rows=1,
        )
        return Response(questionnaire_response(row, instrument))


class PatientView(FHIRView):
    """Pseudonymous Patients (registry id only), a searchset Bundle in registry id order.
    Search: ``identifier`` (a registry id), ``_lastUpdated``."""

    permission_model = Patient
    search_parameters = frozenset({"_lastUpdated", "identifier", "_id"})

    @extend_schema(operation_id="fhir_patient_search", responses=FHIR_RESPONSES)
    def get(self, request: Request) -> Response:
        params = self.search_params(request)
        queryset = patients_for(request.user)
        try:
            size = page_size(params.get("_count", [None])[0])
            for value in params.get("_lastUpdated", []):
                queryset = _last_updated(queryset, value)
            for name in ("identifier", "_id"):
                if name in params:
                    value = _one(params[name], name).rsplit("|", 1)[-1]
                    queryset = queryset.filter(registry_id=value)
            if "_page_after" in params:
                queryset = queryset.filter(
                    registry_id__gt=_one(params["_page_after"], "_page_after")
                )
        except ValueError as error:
            raise FHIRError(str(error)) from None
        rows = list(queryset.order_by("registry_id")[: size + 1])
        entries = [patient_resource(row) for row in rows[:size]]
        next_url = (
            self.next_link(request, params, rows[size - 1].registry_id)
            if len(rows) > size
            else None
        )
        export_log_read(
            user=request.user,
            resource="fhir/Patient",
            filters=logged_filters(request),
            rows=len(entries),
        )
        return Response(
            bundle(entries, self_url=self.self_link(request, params), next_url=next_url)
        )


class PatientReadView(FHIRView):
    permission_model = Patient

    @extend_schema(operation_id="fhir_patient_read", responses=FHIR_RESPONSES)
    def get(self, request: Request, resource_id: str) -> Response:
        row = patients_for(request.user).filter(registry_id=resource_id).first()
        if row is None:
            raise FHIRError(f"Patient/{resource_id} is not known", 404)
        export_log_read(
            user=request.user, resource="fhir/Patient", filters={"id": [resource_id]}, rows=1
        )
        return Response(patient_resource(row))


class ProcedureView(FHIRView):
    """Procedures, a searchset Bundle in id order. Search: ``subject`` (Patient/<registry
    id>), ``_lastUpdated``."""

    permission_model = Procedure
    search_parameters = frozenset({"_lastUpdated", "subject", "_id"})

    @extend_schema(operation_id="fhir_procedure_search", responses=FHIR_RESPONSES)
    def get(self, request: Request) -> Response:
        params = self.search_params(request)
        queryset = procedures_for(request.user)
        try:
            size = page_size(params.get("_count", [None])[0])
            for value in params.get("_lastUpdated", []):
                queryset = _last_updated(queryset, value)
            if "subject" in params:
                registry_id = _one(params["subject"], "subject").removeprefix("Patient/")
                queryset = queryset.filter(patient__registry_id=registry_id)
            for name in ("_id", "_page_after"):
                if name in params:
                    value = _one(params[name], name)
                    if not _is_id(value):
                        raise ValueError(f"{name}: {value!r} is not a Procedure id")
                    lookup = "pk" if name == "_id" else "pk__gt"
                    queryset = queryset.filter(**{lookup: int(value)})
        except ValueError as error:
            raise FHIRError(str(error)) from None
        rows = list(queryset.order_by("pk")[: size + 1])
        entries = [procedure_resource(row) for row in rows[:size]]
        next_url = (
            self.next_link(request, params, str(rows[size - 1].pk)) if len(rows) > size else None
        )
        export_log_read(
            user=request.user,
            resource="fhir/Procedure",
            filters=logged_filters(request),
            rows=len(entries),
        )
        return Response(
            bundle(entries, self_url=self.self_link(request, params), next_url=next_url)
        )


class ProcedureReadView(FHIRView):
    permission_model = Procedure

    @extend_schema(operation_id="fhir_procedure_read", responses=FHIR_RESPONSES)
    def get(self, request: Request, resource_id: str) -> Response:
        row = None
        if _is_id(resource_id):
            row = procedures_for(request.user).filter(pk=int(resource_id)).first()
        if row is None:
            raise FHIRError(f"Procedure/{resource_id} is not known", 404)
        export_log_read(
            user=request.user, resource="fhir/Procedure", filters={"id": [resource_id]}, rows=1
        )
        return Response(procedure_resource(row))


class NotFoundView(FHIRView):
    """Any other path under ``fhir/``: a 404 OperationOutcome, whatever the method."""

    permission_model = QuestionnaireResponse
    schema = None  # not an operation to document

    def dispatch_any(self, request: Request, *args, **kwargs) -> Response:
        raise FHIRError(f"{request.path} is not a resource or operation of this server", 404)

    get = post = put = patch = delete = dispatch_any


# --- the CapabilityStatement ------------------------------------------------------------------

SEARCH_TYPES = {
    "_lastUpdated": "date",
    "questionnaire": "reference",
    "subject": "reference",
    "part-of": "reference",
    "identifier": "token",
    "_id": "token",
}


def _rest_resource(kind: str, profile_doc: str, params: frozenset[str], search: bool) -> dict:
    resource = {
        "type": kind,
        "documentation": profile_doc,
        "interaction": [{"code": "read"}, *([{"code": "search-type"}] if search else [])],
        "versioning": "no-version",
        "readHistory": False,
        "updateCreate": False,
    }
    if params:
        resource["searchParam"] = [
            {"name": name, "type": SEARCH_TYPES[name]} for name in sorted(params)
        ]
    return resource


def capability_statement(base_url: str) -> dict:
    """What this server does, as FHIR R4 asks ``GET [base]/metadata`` to say."""
    return {
        "resourceType": "CapabilityStatement",
        "id": "registry",
        "url": f"{BASE}/CapabilityStatement/registry",
        "version": VERSION,
        "name": "VertebralAugmentationRegistry",
        "title": "Vertebral augmentation registry: read-only FHIR R4 API",
        "status": "active",
        "date": "2026-12-02",
        "publisher": "Vertebral augmentation registry",
        "kind": "instance",
        "implementation": {
            "description": "Pseudonymised questionnaire answers, procedures and patients",
            "url": base_url,
        },
        "fhirVersion": "4.0.1",
        "format": ["json"],
        "rest": [
            {
                "mode": "server",
                "documentation": "Token authentication (Authorization: Token <token>); every "
                "read is logged. Unknown search parameters are refused (400) unless "
                "Prefer: handling=lenient. docs/import-export.md describes the extensions "
                "and code systems.",
                "security": {"cors": False, "description": "Registry API tokens"},
                "resource": [
                    _rest_resource(
                        "QuestionnaireResponse",
                        "One per instrument answered; timepoint, mode and entered-by as "
                        "extensions; partOf the Procedure",
                        QuestionnaireResponseView.search_parameters,
                        True,
                    ),
                    _rest_resource(
                        "Questionnaire",
                        "pain-vas, eq-5d-3l, eq-5d-5l, odi",
                        frozenset(),
                        True,
                    ),
                    _rest_resource(
                        "Patient",
                        "Pseudonymous: the registry id only",
                        PatientView.search_parameters,
                        True,
                    ),
                    _rest_resource(
                        "Procedure",
                        "Technique, date, levels",
                        ProcedureView.search_parameters,
                        True,
                    ),
                ],
                "operation": [
                    {
                        "name": "export",
                        "definition": "http://hl7.org/fhir/uv/bulkdata/OperationDefinition/export",
                        "documentation": "Bulk Data system export (NDJSON) of "
                        "QuestionnaireResponse, Patient and Procedure",
                    }
                ],
            }
        ],
    }


class MetadataView(FHIRView):
    """The server's CapabilityStatement (``GET [base]/metadata``): public, as clients read it
    before they authenticate (it names no data), and throttled per address."""

    permission_classes = [AllowAny]
    throttle_classes = [AnonThrottle]

    @extend_schema(operation_id="fhir_metadata", responses=FHIR_RESPONSES)
    def get(self, request: Request) -> Response:
        self.search_params(request)
        base = request.build_absolute_uri(request.path.removesuffix("metadata"))
        return Response(capability_statement(base))
