"""Extract the response schemas our schema tests need from Sentry's published OpenAPI document.

``python scripts/extract_sentry_schema.py path/to/openapi-derefed.json COMMIT`` writes one
``tests/data/sentry_schema/<operationId>.json`` per operation below, each naming the
getsentry/sentry-api-schema commit it was taken from.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "sentry_schema"
ORG = "/api/0/organizations/{organization_id_or_slug}"
OPERATIONS = [
    ("/api/0/organizations/", "get", "200"),
    (f"{ORG}/", "get", "200"),
    (f"{ORG}/projects/", "get", "200"),
    (f"{ORG}/sessions/", "get", "200"),
    (f"{ORG}/releases/", "get", "200"),
    (f"{ORG}/releases/", "post", "201"),
    (f"{ORG}/releases/{{version}}/", "get", "200"),
    (f"{ORG}/releases/{{version}}/", "put", "200"),
    (f"{ORG}/releases/{{version}}/commits/", "get", "200"),
    (f"{ORG}/releases/{{version}}/deploys/", "get", "200"),
    (f"{ORG}/releases/{{version}}/deploys/", "post", "201"),
    (f"{ORG}/repos/", "get", "200"),
    ("/api/0/projects/{organization_id_or_slug}/{project_id_or_slug}/releases/", "get", "200"),
]


def main(source: str, commit: str) -> None:
    document = json.loads(Path(source).read_text())
    OUT.mkdir(parents=True, exist_ok=True)
    for path, method, status in OPERATIONS:
        operation = document["paths"][path][method]
        response = operation["responses"][status]
        schema = response.get("content", {}).get("application/json", {}).get("schema")
        data = {
            "source": "getsentry/sentry-api-schema openapi-derefed.json",
            "commit": commit,
            "operationId": operation["operationId"],
            "method": method.upper(),
            "path": path,
            "status": int(status),
            "schema": schema,
        }
        target = OUT / f"{operation['operationId']}.json"
        target.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
        print(target.name)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
