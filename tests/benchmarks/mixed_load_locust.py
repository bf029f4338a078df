"""The load of the mixed-load benchmark: Locust as a library, in a process of its own.

    python -m tests.benchmarks.mixed_load_locust PLAN.json RESULT.json

``test_mixed_load_benchmark.py`` writes the plan (hosts, users, links, forms, seconds) and reads
the result; Locust's gevent patches the whole process it is imported in, so it never runs
inside pytest's process (which holds Django's database connection and the SMTP server's
thread). Nothing here imports the project: the load speaks HTTP only.

Every request goes to the next host of the plan in turn (a round-robin balancer in the client):
a staff session made on one host is used on the other, a questionnaire's steps alternate
between them. Each request is recorded with the time it started, its duration in ms, whether
it got the status it should, and the host's port.
"""

from __future__ import annotations

# ruff: noqa: E402 - gevent patches the standard library before anything else is imported
from gevent import monkey

# Before anything imports ssl or socket: requests (the auditors' client) imports ssl, and
# Locust's own patching on import would come too late for it.
monkey.patch_all()

import itertools
import json
import random
import re
import sys
import time

import gevent
import requests
from locust import FastHttpUser, User, between, constant_pacing, events, task
from locust.env import Environment

PLAN: dict = {}
RECORDS: list[list] = []  # [started (epoch s), name, ms, ok, port, error]
QUESTIONNAIRES: list[dict] = []  # {"token", "ports": [...], "submitted": bool}
EXPORTS: list[dict] = []  # {"name", "rows", "seconds", "port", "ok", "started"}
LOGINS: list[dict] = []  # {"port": login host, "later_ports": ports of its later requests}
_turn = itertools.count()
_serial = itertools.count(1)
CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
PATIENT_ID = re.compile(r"[?&](?:amp;)?patient=(\d+)")
ERRORLIST = re.compile(r'<ul class="errorlist[^"]*"[^>]*>(.*?)</ul>', re.S)


def next_host() -> str:
    hosts = PLAN["hosts"]
    return hosts[next(_turn) % len(hosts)]


def port_of(host: str) -> int:
    return int(host.rsplit(":", 1)[1])


class Recording:
    """One request through a FastHttpUser's client, to the next host, recorded."""

    def call(self, name: str, method: str, path: str, expected: int, form=None):
        host = next_host()
        started = time.time()
        clock = time.perf_counter()
        with self.client.request(
            method,
            host + path,
            data=form,
            name=name,
            catch_response=True,
            allow_redirects=False,
        ) as response:
            ms = (time.perf_counter() - clock) * 1000
            ok = response.status_code == expected
            error = ""
            if not ok:
                body = response.text or ""
                errors = " | ".join(re.sub(r"<[^>]+>", " ", e) for e in ERRORLIST.findall(body))
                error = f"{response.status_code} {response.headers.get('Location', '')} {errors}"
                error = " ".join(error.split())[:300] or str(response.error)[:300]
                response.failure(error)
            else:
                response.success()
            RECORDS.append([started, name, round(ms, 2), ok, port_of(host), error])
            return ok, response, port_of(host)


class StaffUser(Recording, FastHttpUser):
    """A nurse at a site: logs in, searches patients, opens records, enters a case."""

    host = "http://127.0.0.1"  # every request names its host (round-robin)
    wait_time = between(1, 4)

    def on_start(self) -> None:
        self.account = PLAN["staff"].pop()
        self.login = {"port": None, "later_ports": []}
        ok, page, _ = self.call("staff login page", "GET", "/admin/login/", 200)
        token = CSRF.search(page.text or "")
        form = {
            "csrfmiddlewaretoken": token.group(1) if token else "",
            "username": self.account["username"],
            "password": self.account["password"],
            "next": "/admin/",
        }
        ok, _response, port = self.call("staff login", "POST", "/admin/login/", 302, form)
        self.login["port"] = port
        LOGINS.append(self.login)

    def staff_call(self, name, method, path, expected, form=None):
        ok, response, port = self.call(name, method, path, expected, form)
        self.login["later_ports"].append(port)
        return ok, response

    @task(4)
    def search(self) -> None:
        registry_id = random.choice(self.account["registry_ids"])
        term = registry_id if random.random() < 0.5 else registry_id.split("-")[1][-4:]
        self.staff_call("staff search", "GET", f"/admin/registry/patient/?q={term}", 200)

    @task(4)
    def open_record(self) -> None:
        registry_id = random.choice(self.account["registry_ids"])
        self.staff_call("staff record", "GET", f"/admin/staff/record/{registry_id}/", 200)

    @task(1)
    def enter_case(self) -> None:
        ok, page = self.staff_call("staff patient add page", "GET", PLAN["patient_add"], 200)
        token = CSRF.search(page.text or "") if ok else None
        if not token:
            return
        n = next(_serial)
        form = dict(self.account["patient_form"])
        form.update(
            {
                "csrfmiddlewaretoken": token.group(1),
                "date_of_birth": f"19{random.randrange(30, 60)}-0{random.randrange(1, 10)}-1"
                f"{random.randrange(0, 9)}",
                "contact-0-name": f"Load Patient {PLAN['phase']} {n} {random.random():.8f}",
                "contact-0-email": f"load-{PLAN['phase']}-{n}-{random.randrange(10**9)}@test.org",
                # In the range of the tests' own number (libphonenumber refuses some ranges).
                "contact-0-phone": f"31 12 {random.randrange(100):02d} {random.randrange(100):02d}",
            }
        )
        ok, saved = self.staff_call("staff patient save", "POST", PLAN["patient_add"], 302, form)
        if not ok:
            return
        record = saved.headers.get("Location", "")
        ok, page = self.staff_call("staff record", "GET", record, 200)
        patient = PATIENT_ID.search(page.text or "") if ok else None
        if not patient:
            return
        add = f"{PLAN['procedure_add']}?patient={patient.group(1)}"
        ok, page = self.staff_call("staff procedure add page", "GET", add, 200)
        token = CSRF.search(page.text or "") if ok else None
        if not token:
            return
        form = dict(PLAN["procedure_form"])
        form.update({"csrfmiddlewaretoken": token.group(1), "patient": patient.group(1)})
        self.staff_call("staff procedure save", "POST", add, 302, form)


class PatientUser(Recording, FastHttpUser):
    """A patient answering a questionnaire from an emailed link, one step at a time."""

    host = "http://127.0.0.1"
    wait_time = constant_pacing(1)  # set from the plan

    @task
    def answer(self) -> None:
        if not PLAN["questionnaires"]:
            gevent.sleep(1)
            return
        steps = PLAN["questionnaires"].pop()
        # Recorded before the first step: a questionnaire cut off by the end of the phase
        # (after its submit, say) is still counted as far as it went.
        done = {"token": steps[0][2].split("/")[2], "ports": [], "submitted": False}
        QUESTIONNAIRES.append(done)
        for i, (label, method, path, form) in enumerate(steps):
            if i:
                gevent.sleep(PLAN["step_pause"])
            ok, _response, port = self.call(
                f"questionnaire {label}", method, path, 200 if method == "GET" else 302, form
            )
            done["ports"].append(port)
            if not ok:
                break
            done["submitted"] = done["submitted"] or label == "submit POST"


class AuditorUser(User):
    """An auditor streaming CSV exports with an API token, one after another."""

    wait_time = between(1, 2)

    def on_start(self) -> None:
        self.token = PLAN["auditor_tokens"].pop()
        self.session = requests.Session()
        self.exports = itertools.cycle(PLAN["exports"])

    @task
    def export(self) -> None:
        name = next(self.exports)
        host = next_host()
        started, clock = time.time(), time.perf_counter()
        rows, ok, error = 0, False, ""
        try:
            with self.session.get(
                f"{host}/api/v1/exports/{name}",
                headers={"Authorization": f"Token {self.token}"},
                stream=True,
                timeout=600,
            ) as response:
                lines = 0
                for chunk in response.iter_content(1 << 16):
                    lines += chunk.count(b"\n")
                rows, ok = max(lines - 1, 0), response.status_code == 200
                error = "" if ok else f"{response.status_code}"
        except requests.RequestException as exc:
            error = f"{type(exc).__name__}: {exc}"[:300]
        seconds = time.perf_counter() - clock
        label = f"export {name}"
        RECORDS.append([started, label, round(seconds * 1000, 2), ok, port_of(host), error])
        EXPORTS.append(
            {"name": name, "rows": rows, "seconds": seconds, "port": port_of(host), "ok": ok}
        )
        events.request.fire(
            request_type="GET",
            name=label,
            response_time=seconds * 1000,
            response_length=rows,
            exception=None if ok else Exception(error),
            context={},
        )


def main(plan_path: str, result_path: str) -> None:
    with open(plan_path) as plan:
        PLAN.update(json.load(plan))
    counts = PLAN["users"]  # class name -> users
    classes = []
    for cls in (StaffUser, PatientUser, AuditorUser):
        if counts.get(cls.__name__):
            cls.fixed_count = counts[cls.__name__]
            classes.append(cls)
    if counts.get("PatientUser"):
        # Each patient user starts a questionnaire every `pacing` seconds: together the rate.
        pacing = 60 * counts["PatientUser"] / PLAN["questionnaires_per_minute"]
        PatientUser.wait_time = constant_pacing(pacing)
    total = sum(cls.fixed_count for cls in classes)
    environment = Environment(user_classes=classes, events=events)
    runner = environment.create_local_runner()
    started = time.time()
    runner.start(total, spawn_rate=max(1.0, total / PLAN["ramp_seconds"]))
    gevent.spawn_later(PLAN["seconds"], runner.quit)
    runner.greenlet.join()
    elapsed = time.time() - started
    result = {
        "started": started,
        "elapsed": elapsed,
        "records": RECORDS,
        "questionnaires": QUESTIONNAIRES,
        "exports": EXPORTS,
        "logins": LOGINS,
        "users": {cls.__name__: cls.fixed_count for cls in classes},
        "locust_failures": environment.stats.total.num_failures,
        "locust_requests": environment.stats.total.num_requests,
    }
    with open(result_path, "w") as out:
        json.dump(result, out)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
