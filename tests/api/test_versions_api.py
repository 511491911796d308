"""Uploading kernels: multipart, hashed by the model, numbered, checked and size-limited."""

from __future__ import annotations

import hashlib

from django.core.files.uploadedfile import SimpleUploadedFile

import pytest

from compute.models import AppVersion
from tests.api.conftest import body

URL = "/api/projects/mine/apps/square/versions"
KERNEL = b"export async function run(input, progress) { await progress(1); return input; }\n"
WASM = b"\0asm\x01\0\0\0"


def upload(api, kernel: bytes = KERNEL, **extra):
    files = {"kernel": SimpleUploadedFile("k.js", kernel, "text/javascript")}
    return api.post(URL, {**files, **extra})


@pytest.mark.django_db
def test_a_kernel_becomes_the_next_version(api, owned_project):
    response = upload(api)

    assert response.status_code == 201
    data = body(response)
    assert data["version"] == 2
    assert data["kernel_sha256"] == hashlib.sha256(KERNEL).hexdigest()
    assert data["wasm_sha256"] == ""
    app = owned_project.apps.get()
    assert app.current_version().kernel == KERNEL.decode()


@pytest.mark.django_db
def test_a_wasm_binary_goes_with_it(api, owned_project):
    response = upload(api, wasm=SimpleUploadedFile("m.wasm", WASM))

    assert body(response)["wasm_sha256"] == hashlib.sha256(WASM).hexdigest()
    assert bytes(AppVersion.objects.get(version=2).wasm) == WASM


@pytest.mark.django_db
def test_an_explicit_version_number_may_not_be_taken_twice(api, owned_project):
    assert body(upload(api, version=7))["version"] == 7
    response = upload(api, version=7)

    assert response.status_code == 409
    assert body(upload(api))["version"] == 8


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("kernel", "message"),
    [
        (b"", "empty"),
        (b"\xff\xfe not text", "not UTF-8"),
        (b"def run(x): return x\n", "does not export run"),
        (b"export function walk() {}", "does not export run"),
    ],
)
def test_files_that_are_not_kernels_are_refused(api, owned_project, kernel, message):
    response = upload(api, kernel)

    assert response.status_code == 400
    assert message in body(response)["detail"]
    assert AppVersion.objects.count() == 1


@pytest.mark.django_db
@pytest.mark.parametrize(
    "kernel",
    [
        b"export function run(i) { return i; }",
        b"export const run = async (i) => i;",
        b"async function run(i) { return i; }\nexport { run };",
    ],
)
def test_every_way_of_exporting_run_is_accepted(api, owned_project, kernel):
    assert upload(api, kernel).status_code == 201


@pytest.mark.django_db
def test_a_wasm_file_must_be_webassembly(api, owned_project):
    response = upload(api, wasm=SimpleUploadedFile("m.wasm", b"MZ\x90\x00"))

    assert response.status_code == 400
    assert "WebAssembly" in body(response)["detail"]


@pytest.mark.django_db
def test_uploads_over_the_limit_are_413(api, owned_project, settings):
    settings.COMPUTE = {**settings.COMPUTE, "MAX_KERNEL_BYTES": 1024}
    big = KERNEL + b"//" + b"x" * 1024

    assert upload(api, big).status_code == 413
    assert upload(api, wasm=SimpleUploadedFile("m.wasm", WASM + b"\0" * 1024)).status_code == 413
    assert AppVersion.objects.count() == 1


@pytest.mark.django_db
def test_a_kernel_is_required_as_multipart(api, owned_project):
    missing = api.post(URL, {"version": "3"})
    as_json = api.post_json(URL, {"kernel": KERNEL.decode()})

    assert missing.status_code == 400
    assert "kernel: the field is missing" in body(missing)["detail"]
    assert as_json.status_code == 400
    assert "multipart/form-data" in body(as_json)["detail"]


@pytest.mark.django_db
def test_a_kernel_may_come_as_a_plain_form_field(api, owned_project):
    # What curl -F "kernel=<k.js" sends.
    response = api.post(URL, {"kernel": KERNEL.decode(), "version": "4"})

    assert response.status_code == 201
    assert body(response)["version"] == 4


@pytest.mark.django_db
@pytest.mark.parametrize("version", ["x", "-1", "1.5", "99999999999"])
def test_a_version_number_is_a_whole_number(api, owned_project, version):
    response = upload(api, version=version)

    assert response.status_code == 400
    assert "version" in body(response)["detail"]


@pytest.mark.django_db
def test_nobody_uploads_to_another_owners_app(api, project_factory):
    project_factory(slug="theirs")

    response = api.post(
        "/api/projects/theirs/apps/square/versions",
        {"kernel": SimpleUploadedFile("k.js", KERNEL)},
    )

    assert response.status_code == 404
    assert AppVersion.objects.count() == 1


@pytest.mark.django_db
def test_a_huge_plain_form_field_is_413(api, owned_project, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 200

    response = api.post(URL, {"kernel": KERNEL.decode() + "//" + "x" * 300})

    assert response.status_code == 413
    assert "file parts" in body(response)["detail"]
