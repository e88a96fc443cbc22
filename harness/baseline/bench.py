"""Drives the baseline handler (handler.py) for `cargo xtask bench`, which starts it with the
project's `.venv` Python and reads what it prints. Subcommands:

  cpu EVENTS PASSES STOP
                   handler CPU per event with the network taken out. STOP `wire`: every
                   PutItem is built, serialized and signed by botocore, then answered by a
                   `before-send` hook instead of a socket. STOP `request`: answered at
                   `before-call`, where botocore's Stubber answers, once the request is
                   serialized and before it is signed. Prints one JSON line.
  runtime          a minimal Lambda custom runtime loop (as Lambda's own Python runtime does:
                   poll `next`, call the handler, post the response) against
                   AWS_LAMBDA_RUNTIME_API. The handler is imported after the process starts, so
                   the time to the first `next` request is interpreter start + imports + clients.
  consumer QUEUE   reads the local pipeline's delivery queue and hands each event to the
                   handler, as one Lambda sandbox would, until it is stopped.
  package OUT      the deployment zips: the handler alone, and the handler with boto3 and its
                   dependencies exactly as pip installed them into this interpreter.

Only the standard library and boto3 are used, so it runs in the same environment as moto.
"""

import http.client
import importlib
import importlib.metadata
import json
import os
import re
import sys
import time
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


class Context:
    """The part of Lambda's context object the handler reads."""

    def __init__(self, request_id):
        self.aws_request_id = request_id


def load_handler():
    sys.path.insert(0, str(HERE))
    return importlib.import_module("handler")


class _Body:
    def __init__(self, data):
        self._data = data

    def stream(self, **_):
        yield self._data


def _answer_serialized_request(**_):
    from botocore.awsrequest import AWSResponse

    # What botocore's Stubber returns: an HTTP response and the parsed reply.
    return AWSResponse(None, 200, {}, None), {"ResponseMetadata": {"HTTPStatusCode": 200}}


def _answer_without_network(request, **_):
    from botocore.awsrequest import AWSResponse

    # PutItem's successful reply is an empty JSON object.
    return AWSResponse(
        request.url, 200, {"Content-Type": "application/x-amz-json-1.0"}, _Body(b"{}")
    )


def cpu(events_path, passes, stop):
    module = load_handler()
    events = module._dynamodb.meta.client.meta.events
    if stop == "wire":
        events.register("before-send.dynamodb", _answer_without_network)
    elif stop == "request":
        events.register("before-call.dynamodb", _answer_serialized_request)
    else:
        sys.exit(f"cpu: STOP must be wire or request, not {stop!r}")
    raw_events = Path(events_path).read_text().splitlines()
    request_ids = [f"bench-{i:08d}" for i in range(len(raw_events))]
    contexts = [Context(r) for r in request_ids]

    # Warm caches (botocore loads service models lazily on the first call).
    for raw, ctx in list(zip(raw_events, contexts))[:200]:
        module.handler(json.loads(raw), ctx)

    cpu_start, wall_start = time.process_time(), time.perf_counter()
    for _ in range(passes):
        for raw, ctx in zip(raw_events, contexts):
            # Lambda's runtime decodes the payload before the handler sees it; ours decodes in
            # the handler, so both sides pay for parsing the same text.
            module.handler(json.loads(raw), ctx)
    cpu_s = time.process_time() - cpu_start
    wall_s = time.perf_counter() - wall_start
    print(
        json.dumps(
            {
                "events": len(raw_events) * passes,
                "cpu_s": cpu_s,
                "wall_s": wall_s,
            }
        )
    )


def runtime():
    api = os.environ["AWS_LAMBDA_RUNTIME_API"]
    module = load_handler()
    host, _, port = api.partition(":")
    conn = http.client.HTTPConnection(host, int(port or 80), timeout=120)
    while True:
        conn.request("GET", "/2018-06-01/runtime/invocation/next")
        response = conn.getresponse()
        payload = response.read()
        if response.status != 200:
            return
        request_id = response.getheader("Lambda-Runtime-Aws-Request-Id", "")
        try:
            result = module.handler(json.loads(payload), Context(request_id))
            path, body = "response", json.dumps(result, default=str)
        except Exception as err:  # noqa: BLE001 - Lambda reports any exception the same way
            path = "error"
            body = json.dumps({"errorType": type(err).__name__, "errorMessage": str(err)})
        conn.request(
            "POST",
            f"/2018-06-01/runtime/invocation/{request_id}/{path}",
            body=body.encode(),
            headers={"Content-Type": "application/json"},
        )
        conn.getresponse().read()


def consumer(queue_url):
    import uuid

    import boto3

    module = load_handler()
    sqs = boto3.client("sqs")
    while True:
        messages = sqs.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
        ).get("Messages", [])
        if not messages:
            continue
        done = []
        for i, message in enumerate(messages):
            try:
                module.handler(json.loads(message["Body"]), Context(str(uuid.uuid4())))
            except Exception as err:  # noqa: BLE001 - counted, then dropped like a spent retry
                print(f"baseline handler failed: {type(err).__name__}: {err}", file=sys.stderr)
            done.append({"Id": str(i), "ReceiptHandle": message["ReceiptHandle"]})
        sqs.delete_message_batch(QueueUrl=queue_url, Entries=done)


def _requirement_names(dist):
    names = []
    for requirement in dist.requires or []:
        if ";" in requirement and "extra ==" in requirement.split(";", 1)[1]:
            continue
        match = re.match(r"[A-Za-z0-9._-]+", requirement)
        if match:
            names.append(match.group(0))
    return names


def _closure(root):
    seen, todo, dists = set(), [root], []
    while todo:
        name = todo.pop()
        key = re.sub(r"[-_.]+", "-", name).lower()
        if key in seen:
            continue
        seen.add(key)
        dist = importlib.metadata.distribution(name)
        dists.append(dist)
        todo.extend(_requirement_names(dist))
    return dists


def _add(archive, path, arcname):
    # Fixed timestamp and mode, so the size does not depend on when the files were written.
    info = zipfile.ZipInfo(arcname, date_time=(1980, 1, 1, 0, 0, 0))
    info.external_attr = 0o644 << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    archive.writestr(info, Path(path).read_bytes(), compresslevel=9)


def package(out_dir):
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    handler = HERE / "handler.py"
    alone = out / "baseline-handler.zip"
    with zipfile.ZipFile(alone, "w") as archive:
        _add(archive, handler, "handler.py")

    dists = _closure("boto3")
    full = out / "baseline-with-deps.zip"
    files = 0
    with zipfile.ZipFile(full, "w") as archive:
        _add(archive, handler, "handler.py")
        for dist in sorted(dists, key=lambda d: d.metadata["Name"].lower()):
            for file in sorted(dist.files or [], key=str):
                name = str(file)
                # Entries outside site-packages (console scripts) are not part of a Lambda zip;
                # compiled caches are left out because pip writes them for some packages and
                # not others, and leaving them out only makes the baseline smaller.
                if name.startswith("..") or "__pycache__" in name:
                    continue
                path = file.locate()
                if Path(path).is_file():
                    _add(archive, path, name)
                    files += 1
    print(
        json.dumps(
            {
                "handler_zip": alone.stat().st_size,
                "with_deps_zip": full.stat().st_size,
                "files": files,
                "distributions": {
                    d.metadata["Name"]: d.version
                    for d in sorted(dists, key=lambda d: d.metadata["Name"].lower())
                },
            }
        )
    )


def main(argv):
    usage = (
        "usage: bench.py cpu EVENTS PASSES wire|request | runtime | consumer QUEUE_URL"
        " | package OUT_DIR"
    )
    if not argv:
        sys.exit(usage)
    command, args = argv[0], argv[1:]
    if command == "cpu" and len(args) == 3:
        cpu(args[0], int(args[1]), args[2])
    elif command == "runtime":
        runtime()
    elif command == "consumer" and args:
        consumer(args[0])
    elif command == "package" and args:
        package(args[0])
    else:
        sys.exit(usage)


if __name__ == "__main__":
    main(sys.argv[1:])
