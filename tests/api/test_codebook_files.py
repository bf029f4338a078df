"""The codebook (HTML and Word) and the R, SPSS and Stata syntax files that read the CSVs."""

import io
import json
import re
import shutil
import subprocess

import docx
import pytest

from api.exports import EXPORTS
from outcomes.models import QuestionnaireResponse
from tests.api.conftest import token_client
from tests.factories import make_user


@pytest.fixture
def manager(db):
    return token_client(make_user("Registry manager", username="codebook.manager"))


def test_codebook_lists_every_export_column_with_labels_and_counts(registry, api_a, manager):
    page = manager.get("/api/v1/exports/codebook.html")
    assert page.status_code == 200 and page["Content-Type"].startswith("text/html")
    text = page.content.decode()
    sections = re.split(r"<h2 id=", text)[1:]
    assert len(sections) == len(EXPORTS)
    for section, export in zip(sections, EXPORTS.values(), strict=True):
        assert section.startswith(f'"{export.name}"')
        listed = re.findall(r"<td><code>([^<]+)</code></td>", section)
        assert listed == [c.name for c in export.columns]
    responses = sections[list(EXPORTS).index("responses.csv")]
    baseline = QuestionnaireResponse.objects.filter(timepoint="baseline").count()
    assert f"baseline = Baseline ({baseline})" in responses
    assert "3 = I have moderate problems in walking about (1)" in responses  # the 5L column
    # an auditor sees counts over their own sites, and none for a file they may not export
    auditor_text = api_a.get("/api/v1/exports/codebook.html").content.decode()
    site_a = QuestionnaireResponse.objects.filter(
        timepoint="baseline", procedure__patient__site__code="AAA"
    ).count()
    assert f"baseline = Baseline ({site_a})" in auditor_text and site_a < baseline


def test_codebook_as_word_has_every_variable(registry, manager):
    response = manager.get("/api/v1/exports/codebook.docx")
    assert response.status_code == 200
    document = docx.Document(io.BytesIO(response.content))
    assert len(document.tables) == len(EXPORTS)
    for table, export in zip(document.tables, EXPORTS.values(), strict=True):
        assert [row.cells[0].text for row in table.rows[1:]] == [c.name for c in export.columns]
        assert "w:tblHeader" in table.rows[0]._tr.xml  # header repeated on every page
    section = document.sections[0]
    assert (round(section.page_width.mm), round(section.page_height.mm)) == (297, 210)


def download(client, url: str, path) -> None:
    response = client.get(url)
    assert response.status_code == 200, response.content
    content = response.streaming_content if response.streaming else [response.content]
    path.write_bytes(b"".join(content))


@pytest.mark.skipif(shutil.which("Rscript") is None, reason="R (r-base-core) not installed")
def test_r_syntax_reads_the_csv_with_types_and_labels(registry, manager, tmp_path):
    for name in ("responses", "levels"):
        download(manager, f"/api/v1/exports/{name}.csv", tmp_path / f"{name}.csv")
        download(manager, f"/api/v1/exports/{name}.R", tmp_path / f"{name}.R")
    check = tmp_path / "check.R"
    check.write_text(
        """
        source("responses.R"); r <- d
        source("levels.R"); l <- d
        out <- list(
          n = nrow(r),
          index = class(r$eq5d_index),
          timepoint = levels(r$timepoint),
          mobility5 = as.character(r$eq5d_5l_mobility[!is.na(r$eq5d_5l_mobility)][1]),
          odi_label = attr(r$odi_lifting, "label"),
          answered = class(r$answered_on),
          leak = class(l$cement_leakage),
          leaks = sum(l$leak_paravertebral)
        )
        cat(sprintf('{"n": %d, "index": "%s", "timepoint": ["%s"], "mobility5": "%s",
          "odi_label": "%s", "answered": "%s", "leak": "%s", "leaks": %d}',
          out$n, out$index, paste(out$timepoint, collapse = '", "'), out$mobility5,
          out$odi_label, out$answered, out$leak, out$leaks))
        """
    )
    result = subprocess.run(  # noqa: S603 (our own script)
        [shutil.which("Rscript"), "--vanilla", str(check)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert found == {
        "n": QuestionnaireResponse.objects.count(),
        "index": "numeric",
        "timepoint": ["Baseline", "Post-op", "3 months", "12 months"],
        "mobility5": "I have moderate problems in walking about",
        "odi_label": "ODI 3 lifting",
        "answered": "Date",
        "leak": "logical",
        "leaks": 1,
    }


def test_spss_and_stata_syntax_name_every_column_with_its_label(registry, manager):
    export = EXPORTS["responses.csv"]
    sps = manager.get("/api/v1/exports/responses.sps").content.decode()
    do = manager.get("/api/v1/exports/responses.do").content.decode()
    variables = sps.split("/VARIABLES=")[1].split("\n.\n")[0].split()
    assert variables[0::2] == [c.name for c in export.columns]
    assert dict(zip(variables[0::2], variables[1::2], strict=True))["eq5d_index"] == "F8.3"
    assert "  eq5d_index 'EQ-5D index'" in sps
    assert "/odi_lifting 0 'I can lift heavy weights without extra pain'" in sps
    for column in export.columns:
        assert f"label variable {column.name} " in do
    assert (
        'label define odi_lifting_lbl 0 `"I can lift heavy weights without extra pain"\', add' in do
    )
    assert "format eq5d_index %8.3f" in do
    assert 'replace _code = 1 if timepoint == "baseline"' in do
