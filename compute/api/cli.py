"""socialgrid's command-line client for project owners.

    python -m compute.api.cli projects list

Standard library only: copy this one file anywhere with Python 3.9+ and run it as
``python cli.py``. Configuration comes from the environment (``SOCIALGRID_URL``,
``SOCIALGRID_TOKEN``) or the ``--url`` and ``--token`` options; make a token at
<site>/owners/tokens/. Commands that submit a batch print only its id on standard output,
so a shell can keep it: ``BATCH=$(python -m compute.api.cli batches sweep ...)``.

Exit status: 0 done, 1 the server refused (the reason is printed), 2 usage or connection
problems.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import IO, Any

USER_AGENT = "socialgrid-cli/1"
CHUNK = 64 * 1024


class CliError(Exception):
    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status


class Client:
    """The few HTTP calls the commands need, over urllib."""

    def __init__(self, url: str, token: str, timeout: float = 60.0) -> None:
        self.base = url.rstrip("/") + "/api"
        self.token = token
        self.timeout = timeout

    def _request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, Any] | None = None,
        body: bytes | None = None,
        content_type: str | None = None,
    ) -> Any:
        url = self.base + path
        if query:
            url += "?" + urllib.parse.urlencode({k: v for k, v in query.items() if v is not None})
        request = urllib.request.Request(url, data=body, method=method)
        request.add_header("Authorization", f"Bearer {self.token}")
        request.add_header("User-Agent", USER_AGENT)
        if content_type:
            request.add_header("Content-Type", content_type)
        try:
            return urllib.request.urlopen(request, timeout=self.timeout)
        except urllib.error.HTTPError as e:
            raise CliError(_http_error(e)) from e
        except urllib.error.URLError as e:
            raise CliError(f"cannot reach {self.base}: {e.reason}", 2) from e
        except OSError as e:
            raise CliError(f"cannot reach {self.base}: {e}", 2) from e

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        with self._request(method, path, **kwargs) as response:
            return json.loads(response.read().decode("utf-8"))

    def send_json(self, method: str, path: str, data: Any) -> Any:
        body = json.dumps(data).encode()
        return self.call(method, path, body=body, content_type="application/json")

    def download(self, path: str, query: Mapping[str, Any], out: IO[bytes]) -> int:
        size = 0
        with self._request("GET", path, query=query) as response:
            while chunk := response.read(CHUNK):
                out.write(chunk)
                size += len(chunk)
        return size


def _http_error(error: urllib.error.HTTPError) -> str:
    try:
        detail = json.loads(error.read().decode("utf-8")).get("detail")
    except (ValueError, AttributeError, OSError):
        detail = None
    if isinstance(detail, list):  # schema errors: [{"loc": [...], "msg": ...}, ...]
        detail = "; ".join(
            f"{_field(item.get('loc', []))}: {item.get('msg')}"
            for item in detail
            if isinstance(item, dict)
        )
    message = f"HTTP {error.code}: {detail or error.reason}"
    if error.code == 429 and error.headers.get("Retry-After"):
        message += f" (retry in {error.headers['Retry-After']} s)"
    if error.code == 401:
        message += " — check SOCIALGRID_TOKEN (make one at /owners/tokens/)"
    return message


def _field(loc: list[Any]) -> str:
    """["body", "slug"] -> "slug": the field, without where the request had it."""
    parts = [str(p) for p in loc]
    while len(parts) > 1 and parts[0] in {"body", "query", "path", "form", "file"}:
        parts.pop(0)
    return ".".join(parts)


def _multipart(fields: Mapping[str, str], files: Mapping[str, Path]) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    parts: list[bytes] = []
    for name, value in fields.items():
        parts.append(
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
            + value.encode()
            + b"\r\n"
        )
    for name, path in files.items():
        filename = path.name.replace('"', "")
        parts.append(
            f"--{boundary}\r\nContent-Disposition: form-data; "
            f'name="{name}"; filename="{filename}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n".encode()
            + _read(path)
            + b"\r\n"
        )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def _read(path: Path | str, stdin: IO[bytes] | None = None) -> bytes:
    if str(path) == "-":
        return (stdin or sys.stdin.buffer).read()
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise CliError(f"cannot read {path}: {e.strerror or e}", 2) from e


def _quote(segment: str) -> str:
    return urllib.parse.quote(segment, safe="")


# ---- Output ---------------------------------------------------------------------------------


class Output:
    def __init__(self, stdout: IO[str], stderr: IO[str], as_json: bool) -> None:
        self.stdout = stdout
        self.stderr = stderr
        self.as_json = as_json

    def data(self, value: Any, text: str) -> None:
        self.stdout.write((json.dumps(value, indent=2) if self.as_json else text) + "\n")

    def note(self, text: str) -> None:
        self.stderr.write(text + "\n")


def _project_line(p: Mapping[str, Any]) -> str:
    apps = ", ".join(a["name"] for a in p["apps"]) or "no apps"
    return f"{p['slug']}\t{p['name']}\t({apps})\t{p['dashboard_url']}"


def _app_line(a: Mapping[str, Any]) -> str:
    v = a.get("current_version")
    version = f"v{v['version']} kernel {v['kernel_sha256'][:12]}" if v else "no kernel yet"
    return f"{a['name']}\t{a['title']}\t{version}\treference {a['reference_path']}"


def _batch_line(b: Mapping[str, Any]) -> str:
    done = b["n_assimilated"] + b["n_errored"]
    return (
        f"batch {b['id']} ({b['name']}): {b['state'].replace('_', ' ')}, "
        f"{done}/{b['n_workunits']} work units done ({100 * b['progress']:.1f}%), "
        f"{b['n_errored']} failed"
    )


# ---- Commands -------------------------------------------------------------------------------


def cmd_projects_list(client: Client, args: argparse.Namespace, out: Output) -> None:
    projects = client.call("GET", "/projects")
    out.data(projects, "\n".join(_project_line(p) for p in projects) or "no projects")


def cmd_projects_show(client: Client, args: argparse.Namespace, out: Output) -> None:
    p = client.call("GET", f"/projects/{_quote(args.project)}")
    text = [_project_line(p), f"public page: {p['url']}"]
    text += ["  " + _app_line(a) for a in p["apps"]]
    out.data(p, "\n".join(text))


# Options of `projects create` and `projects update` and the fields they set.
PROJECT_OPTIONS = (
    ("--quorum", "min_quorum", "agreeing results a work unit needs (default 2)"),
    ("--replicas", "target_nresults", "replicas sent out at first (default 2)"),
    ("--deadline", "delay_bound", "seconds a volunteer has to return a replica (default 3600)"),
    ("--deadline-extension", "max_deadline_extension", "seconds progress may add (default 3600)"),
    ("--max-errors", "max_error_results", "a work unit fails past this many errors (default 3)"),
    ("--max-total", "max_total_results", "replicas a work unit may have in all (default 8)"),
    ("--max-success", "max_success_results", "successes without a quorum (default 5)"),
    ("--daily-quota", "daily_quota_per_core", "a new host's tasks per core and day (default 2000)"),
)


def _project_settings(args: argparse.Namespace) -> dict[str, Any]:
    data = {
        field: getattr(args, option[2:].replace("-", "_"))
        for option, field, _ in PROJECT_OPTIONS
        if getattr(args, option[2:].replace("-", "_")) is not None
    }
    if args.quorum is not None and args.verb == "create":
        # A new project sends as many replicas as its quorum needs, unless told more.
        data["target_nresults"] = max(args.quorum, args.replicas or args.quorum)
    return data


def cmd_projects_create(client: Client, args: argparse.Namespace, out: Output) -> None:
    data: dict[str, Any] = {
        "slug": args.slug,
        "name": args.name,
        "description": args.description,
        "is_public": not args.unlisted,
        **_project_settings(args),
    }
    p = client.send_json("POST", "/projects", data)
    out.data(p, f"created project {p['slug']}: dashboard {p['dashboard_url']}")


def cmd_projects_update(client: Client, args: argparse.Namespace, out: Output) -> None:
    data = _project_settings(args)
    for field in ("name", "description"):
        if getattr(args, field) is not None:
            data[field] = getattr(args, field)
    if args.listed is not None:
        data["is_public"] = args.listed
    if not data:
        raise CliError("nothing to change: give at least one option", 2)
    p = client.send_json("PATCH", f"/projects/{_quote(args.project)}", data)
    changed = ", ".join(f"{k} {p[k]}" for k in data)
    out.data(p, f"updated project {p['slug']}: {changed}")


def cmd_apps_list(client: Client, args: argparse.Namespace, out: Output) -> None:
    apps = client.call("GET", f"/projects/{_quote(args.project)}/apps")
    out.data(apps, "\n".join(_app_line(a) for a in apps) or "no apps")


def cmd_apps_create(client: Client, args: argparse.Namespace, out: Output) -> None:
    data: dict[str, Any] = {
        "name": args.name,
        "title": args.title or args.name,
        "description": args.description,
        "reference_path": args.reference,
        "comparator": args.comparator,
        "adaptive_replication": args.adaptive,
    }
    if args.assimilator:
        data["assimilator_path"] = args.assimilator
    if args.tolerance is not None:
        data["tolerance"] = args.tolerance
    if args.comparator_path:
        data["comparator_path"] = args.comparator_path
    data.update(_app_settings(args))
    a = client.send_json("POST", f"/projects/{_quote(args.project)}/apps", data)
    out.data(a, f"created app {a['name']} in {args.project}")


APP_OPTIONS = (
    ("--min-cores", "min_cores", int, "cores a host needs (default 1)"),
    ("--min-memory-mb", "min_memory_mb", int, "memory a host needs, MB (default 0: any)"),
    ("--spot-check-rate", "spot_check_rate", float, "share of trusted results re-checked"),
)


def _app_settings(args: argparse.Namespace) -> dict[str, Any]:
    values = {field: getattr(args, field) for _, field, _, _ in APP_OPTIONS}
    return {field: value for field, value in values.items() if value is not None}


def cmd_apps_update(client: Client, args: argparse.Namespace, out: Output) -> None:
    data = _app_settings(args)
    if args.tolerance is not None:
        data["tolerance"] = args.tolerance
    if not data:
        raise CliError("nothing to change: give at least one option", 2)
    path = f"/projects/{_quote(args.project)}/apps/{_quote(args.app)}"
    a = client.send_json("PATCH", path, data)
    changed = ", ".join(f"{k} {a[k]}" for k in data)
    out.data(a, f"updated app {a['name']}: {changed}")


def cmd_versions_upload(client: Client, args: argparse.Namespace, out: Output) -> None:
    files = {"kernel": Path(args.kernel)}
    if args.wasm:
        files["wasm"] = Path(args.wasm)
    fields = {"version": str(args.version)} if args.version is not None else {}
    body, content_type = _multipart(fields, files)
    path = f"/projects/{_quote(args.project)}/apps/{_quote(args.app)}/versions"
    v = client.call("POST", path, body=body, content_type=content_type)
    wasm = f", wasm sha256 {v['wasm_sha256']}" if v["wasm_sha256"] else ""
    out.data(v, f"uploaded version {v['version']}: kernel sha256 {v['kernel_sha256']}{wasm}")


def _report_batch(out: Output, batch: Mapping[str, Any]) -> None:
    # The id alone on stdout (for BATCH=$(...)); the rest for the person, on stderr.
    out.data(batch, str(batch["id"]))
    out.note(f"{_batch_line(batch)}\nresults: {batch['results_url']}")


def cmd_batches_submit(client: Client, args: argparse.Namespace, out: Output) -> None:
    body = _read(args.file, args.stdin)
    path = f"/projects/{_quote(args.project)}/apps/{_quote(args.app)}/batches"
    query = {"name": args.name or None, "priority": args.priority}
    batch = client.call("POST", path, query=query, body=body, content_type="application/x-ndjson")
    _report_batch(out, batch)


def parse_vary(text: str) -> tuple[str, Any]:
    """``NAME=START:STOP[:STEP]`` (a range, STOP not included) or ``NAME=[v1, v2, ...]`` (a
    JSON list of values): one parameter of a sweep."""
    name, sep, spec = text.partition("=")
    name, spec = name.strip(), spec.strip()
    if not sep or not name or not spec:
        raise ValueError(f"{text!r}: write NAME=START:STOP[:STEP] or NAME=[v1, v2, ...]")
    if spec.startswith("["):
        try:
            values = json.loads(spec)
        except json.JSONDecodeError as e:
            raise ValueError(f"{name}: the values are not a JSON list ({e.msg})") from e
        if not isinstance(values, list):
            raise ValueError(f"{name}: the values are not a JSON list")
        return name, values
    parts = spec.split(":")
    if len(parts) not in (2, 3):
        raise ValueError(f"{name}: write START:STOP[:STEP] or a JSON list, not {spec!r}")
    try:
        numbers = [_number(part) for part in parts]
    except ValueError as e:
        raise ValueError(f"{name}: {spec!r} is not START:STOP[:STEP] in numbers") from e
    keys = ("start", "stop", "step")
    return name, {keys[i]: number for i, number in enumerate(numbers)}


def _number(text: str) -> int | float:
    value = float(text)
    if value != value or value in (float("inf"), float("-inf")):
        raise ValueError(text)
    return int(value) if value.is_integer() and "." not in text and "e" not in text else value


def sweep_parameters(
    vary: Sequence[str], parameter: str | None, start: float | None, stop: float | None, step
) -> dict[str, Any]:
    """The parameters of a sweep from the options: ``--vary`` (each NAME=SPEC), and the one
    range of ``--parameter``, ``--start``, ``--stop`` and ``--step``."""
    parameters: dict[str, Any] = {}
    if parameter is not None:
        if start is None or stop is None:
            raise ValueError("--parameter needs --start and --stop")
        parameters[parameter] = {"start": start, "stop": stop, "step": step}
    elif start is not None or stop is not None:
        raise ValueError("--start and --stop need --parameter")
    for text in vary:
        name, spec = parse_vary(text)
        if name in parameters:
            raise ValueError(f"{name} is given twice")
        parameters[name] = spec
    if not parameters:
        raise ValueError("say what varies: --vary NAME=START:STOP[:STEP] (or --parameter)")
    return parameters


def cmd_batches_sweep(client: Client, args: argparse.Namespace, out: Output) -> None:
    try:
        template = json.loads(args.template)
    except json.JSONDecodeError as e:
        raise CliError(f"--template is not valid JSON: {e.msg}", 2) from e
    if not isinstance(template, dict):
        raise CliError('--template must be a JSON object, such as {"width": 1000}', 2)
    try:
        parameters = sweep_parameters(args.vary, args.parameter, args.start, args.stop, args.step)
    except ValueError as e:
        raise CliError(str(e), 2) from e
    data = {
        "name": args.name,
        "priority": args.priority,
        "template": template,
        "parameters": parameters,
        "mode": args.mode,
    }
    path = f"/projects/{_quote(args.project)}/apps/{_quote(args.app)}/sweeps"
    _report_batch(out, client.send_json("POST", path, data))


def cmd_batches_list(client: Client, args: argparse.Namespace, out: Output) -> None:
    batches = client.call(
        "GET", f"/projects/{_quote(args.project)}/batches", query={"limit": args.limit}
    )
    out.data(batches, "\n".join(_batch_line(b) for b in batches) or "no batches")


def cmd_batches_status(client: Client, args: argparse.Namespace, out: Output) -> None:
    batch = client.call("GET", f"/batches/{args.batch}")
    out.data(batch, _batch_line(batch))


def cmd_batches_wait(client: Client, args: argparse.Namespace, out: Output) -> None:
    deadline = time.monotonic() + args.timeout if args.timeout else None
    while True:
        batch = client.call("GET", f"/batches/{args.batch}")
        if batch["state"] != "in_progress":
            out.data(batch, _batch_line(batch))
            return
        out.note(_batch_line(batch))
        if deadline is not None and time.monotonic() + args.interval > deadline:
            raise CliError(f"batch {args.batch} is still in progress after {args.timeout} s")
        time.sleep(args.interval)


def cmd_batches_cancel(client: Client, args: argparse.Namespace, out: Output) -> None:
    answer = client.call("POST", f"/batches/{args.batch}/cancel")
    out.data(answer, f"cancelled {answer['cancelled']} work units; {_batch_line(answer['batch'])}")


def cmd_batches_results(client: Client, args: argparse.Namespace, out: Output) -> None:
    path = f"/batches/{args.batch}/results"
    query = {"format": args.format}
    if args.output and args.output != "-":
        target = Path(args.output)
        partial = target.with_name(target.name + ".part")
        try:
            with open(partial, "wb") as stream:
                size = client.download(path, query, stream)
            partial.replace(target)
        except OSError as e:
            raise CliError(f"cannot write {target}: {e.strerror or e}", 2) from e
        finally:
            partial.unlink(missing_ok=True)
        out.note(f"{size} bytes written to {target}")
        return
    buffer = getattr(out.stdout, "buffer", None)
    if buffer is not None:
        out.stdout.flush()
        client.download(path, query, buffer)
        buffer.flush()
    else:  # a text stream (tests): decode
        sink = _TextSink(out.stdout)
        client.download(path, query, sink)


class _TextSink:
    def __init__(self, stream: IO[str]) -> None:
        self.stream = stream

    def write(self, data: bytes) -> None:
        self.stream.write(data.decode("utf-8"))


# ---- Arguments ------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        # A copy of this file run as a script is named after itself.
        prog="python -m compute.api.cli" if __package__ == "compute.api" else None,
        description="Manage your socialgrid projects: apps, kernels, batches and results.",
        epilog="Environment: SOCIALGRID_URL (the site), SOCIALGRID_TOKEN (your API key).",
    )
    parser.add_argument("--url", help="The site, e.g. https://socialgrid.example")
    parser.add_argument("--token", help="Your API key (better: SOCIALGRID_TOKEN)")
    parser.add_argument("--json", action="store_true", help="Print the server's JSON answers")
    nouns = parser.add_subparsers(dest="noun", required=True, metavar="COMMAND")

    projects = nouns.add_parser("projects", help="list, show, create and update projects")
    verbs = projects.add_subparsers(dest="verb", required=True)
    verbs.add_parser("list", help="your projects").set_defaults(run=cmd_projects_list)
    show = verbs.add_parser("show", help="one project and its apps")
    show.add_argument("project", metavar="PROJECT")
    show.set_defaults(run=cmd_projects_show)
    create = verbs.add_parser("create", help="create a project")
    create.add_argument("slug", metavar="SLUG", help="letters, digits, - and _")
    create.add_argument("name", metavar="NAME")
    create.add_argument("--description", default="")
    create.add_argument("--unlisted", action="store_true", help="not on the home page")
    for option, _, text in PROJECT_OPTIONS:
        create.add_argument(option, type=int, help=text)
    create.set_defaults(run=cmd_projects_create)
    update = verbs.add_parser("update", help="change a project's settings (new batches take them)")
    update.add_argument("project", metavar="PROJECT")
    update.add_argument("--name")
    update.add_argument("--description")
    listed = update.add_mutually_exclusive_group()
    listed.add_argument("--listed", action="store_true", default=None, help="on the home page")
    listed.add_argument("--unlisted", dest="listed", action="store_false", help="not on it")
    for option, _, text in PROJECT_OPTIONS:
        update.add_argument(option, type=int, help=text)
    update.set_defaults(run=cmd_projects_update)

    apps = nouns.add_parser("apps", help="list, create and update apps")
    verbs = apps.add_subparsers(dest="verb", required=True)
    listing = verbs.add_parser("list", help="a project's apps")
    listing.add_argument("project", metavar="PROJECT")
    listing.set_defaults(run=cmd_apps_list)
    create = verbs.add_parser("create", help="create an app")
    create.add_argument("project", metavar="PROJECT")
    create.add_argument("name", metavar="NAME")
    create.add_argument("--title")
    create.add_argument("--description", default="")
    create.add_argument("--reference", required=True, help="dotted path of run(input)")
    create.add_argument("--assimilator", help="dotted path of handler(workunit, output)")
    create.add_argument("--comparator", choices=["exact", "numeric", "custom"], default="exact")
    create.add_argument("--tolerance", type=float, help="for --comparator numeric")
    create.add_argument("--comparator-path", help="dotted path of f(a, b) for custom")
    create.add_argument("--adaptive", action="store_true", help="adaptive replication")
    for option, _, kind, text in APP_OPTIONS:
        create.add_argument(option, type=kind, help=text)
    create.set_defaults(run=cmd_apps_create)
    update = verbs.add_parser("update", help="change an app's settings")
    update.add_argument("project", metavar="PROJECT")
    update.add_argument("app", metavar="APP")
    update.add_argument("--tolerance", type=float, help="for the numeric comparator")
    for option, _, kind, text in APP_OPTIONS:
        update.add_argument(option, type=kind, help=text)
    update.set_defaults(run=cmd_apps_update)

    versions = nouns.add_parser("versions", help="upload kernels")
    verbs = versions.add_subparsers(dest="verb", required=True)
    upload = verbs.add_parser("upload", help="upload a kernel (and its wasm)")
    upload.add_argument("project", metavar="PROJECT")
    upload.add_argument("app", metavar="APP")
    upload.add_argument("kernel", metavar="KERNEL.js")
    upload.add_argument("--wasm", metavar="FILE.wasm")
    upload.add_argument("--version", type=int, help="default: one past the newest")
    upload.set_defaults(run=cmd_versions_upload)

    batches = nouns.add_parser("batches", help="submit and follow batches, get results")
    verbs = batches.add_subparsers(dest="verb", required=True)
    submit = verbs.add_parser("submit", help="a batch from a JSON Lines file ('-': stdin)")
    submit.add_argument("project", metavar="PROJECT")
    submit.add_argument("app", metavar="APP")
    submit.add_argument("file", metavar="FILE.jsonl")
    submit.add_argument("--name", default="")
    submit.add_argument("--priority", type=int, default=0)
    submit.set_defaults(run=cmd_batches_submit)
    sweep = verbs.add_parser(
        "sweep",
        help="a batch from a parameter sweep",
        description=(
            "One work unit per value of each parameter that varies (--vary, repeated), the "
            "other fields from --template. With several parameters, --mode grid makes every "
            "combination and --mode zip takes the i-th value of each together."
        ),
    )
    sweep.add_argument("project", metavar="PROJECT")
    sweep.add_argument("app", metavar="APP")
    sweep.add_argument(
        "--vary",
        action="append",
        default=[],
        metavar="NAME=SPEC",
        help="a field that varies: NAME=START:STOP[:STEP] (STOP not included) or "
        "NAME='[v1, v2, ...]' (a JSON list); repeat for more fields",
    )
    sweep.add_argument(
        "--mode",
        choices=["grid", "zip"],
        default="grid",
        help="grid: every combination (default); zip: the lists in parallel",
    )
    sweep.add_argument("--parameter", help="one field that varies over --start/--stop/--step")
    sweep.add_argument("--start", type=float)
    sweep.add_argument("--stop", type=float, help="not included")
    sweep.add_argument("--step", type=float, default=1.0)
    sweep.add_argument("--template", default="{}", help="JSON object: the other fields")
    sweep.add_argument("--name", default="")
    sweep.add_argument("--priority", type=int, default=0)
    sweep.set_defaults(run=cmd_batches_sweep)
    listing = verbs.add_parser("list", help="a project's batches, newest first")
    listing.add_argument("project", metavar="PROJECT")
    listing.add_argument("--limit", type=int, default=50)
    listing.set_defaults(run=cmd_batches_list)
    for verb, run, text in (
        ("status", cmd_batches_status, "a batch's progress"),
        ("cancel", cmd_batches_cancel, "cancel a batch"),
    ):
        sub = verbs.add_parser(verb, help=text)
        sub.add_argument("batch", metavar="BATCH_ID", type=int)
        sub.set_defaults(run=run)
    wait = verbs.add_parser("wait", help="wait until a batch is completed or cancelled")
    wait.add_argument("batch", metavar="BATCH_ID", type=int)
    wait.add_argument("--interval", type=float, default=10.0, help="seconds between checks")
    wait.add_argument("--timeout", type=float, default=0, help="give up after (0: never)")
    wait.set_defaults(run=cmd_batches_wait)
    results = verbs.add_parser("results", help="download the results so far")
    results.add_argument("batch", metavar="BATCH_ID", type=int)
    results.add_argument("--format", choices=["jsonl", "csv"], default="jsonl")
    results.add_argument("--output", metavar="FILE", help="default: standard output")
    results.set_defaults(run=cmd_batches_results)
    return parser


def main(
    argv: Sequence[str] | None = None,
    env: Mapping[str, str] | None = None,
    stdout: IO[str] | None = None,
    stderr: IO[str] | None = None,
    stdin: IO[bytes] | None = None,
) -> int:
    env = os.environ if env is None else env
    stdout = stdout or sys.stdout
    stderr = stderr or sys.stderr
    args = build_parser().parse_args(argv)
    args.stdin = stdin
    out = Output(stdout, stderr, args.json)
    url = args.url or env.get("SOCIALGRID_URL", "")
    token = args.token or env.get("SOCIALGRID_TOKEN", "")
    try:
        if not url:
            raise CliError("no server: set SOCIALGRID_URL or pass --url", 2)
        if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
            raise CliError(f"{url!r} is not an http(s) URL", 2)
        if not token:
            raise CliError("no API key: set SOCIALGRID_TOKEN or pass --token", 2)
        args.run(Client(url, token), args, out)
    except CliError as e:
        stderr.write(f"error: {e}\n")
        return e.status
    return 0


if __name__ == "__main__":
    sys.exit(main())
