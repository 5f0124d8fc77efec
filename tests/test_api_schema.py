"""The OpenAPI schema describes every answer: no 2xx response is a bare object.

A bare object is an object schema with no `properties` (nor a `$ref` to a component that
has them), so the page at /api/schema/ says nothing of its fields: what
`OpenApiTypes.OBJECT` or a hand-built dict gives. A map is described when its values are
(`additionalProperties` with a type). File downloads (CSV, PDF) answer strings.
"""

import re

import pytest
from drf_spectacular.generators import SchemaGenerator

from billing.models import TOKEN_COLUMNS

FILE_TYPES = {"text/csv", "application/pdf"}
COMBINATORS = ("allOf", "oneOf", "anyOf")


def bare_objects(schema: dict, components: dict, where: str, seen: frozenset = frozenset()):
    """Where in `schema` (and the components it refers to) an object has no fields."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        if name not in seen:  # a component nested in itself is walked once
            yield from bare_objects(components[name], components, f"{where} {name}", seen | {name})
        return
    for combinator in COMBINATORS:
        for index, option in enumerate(schema.get(combinator, [])):
            yield from bare_objects(option, components, f"{where}.{combinator}[{index}]", seen)
    kind = schema.get("type")
    if kind == "array":
        yield from bare_objects(schema.get("items", {}), components, f"{where}[]", seen)
    elif kind == "object" or (kind is None and not any(k in schema for k in COMBINATORS)):
        properties = schema.get("properties") or {}
        values = schema.get("additionalProperties")
        described_map = isinstance(values, dict) and bool(values)
        if not properties and not described_map:
            yield where
        for name, member in properties.items():
            yield from bare_objects(member, components, f"{where}.{name}", seen)
        if described_map:
            yield from bare_objects(values, components, f"{where}.*", seen)


def undescribed_answers(schema: dict) -> list[str]:
    """Every 2xx answer of every operation that is, or holds, a bare object; and every file
    download that is not a string."""
    components = schema.get("components", {}).get("schemas", {})
    found = []
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            if method == "parameters":
                continue
            for status, response in operation["responses"].items():
                if not str(status).startswith("2"):
                    continue
                for media_type, content in response.get("content", {}).items():
                    where = f"{method.upper()} {path} {status} {media_type}"
                    answer = content.get("schema", {})
                    if media_type in FILE_TYPES:
                        if answer.get("type") != "string":
                            found.append(f"{where}: a file download that is not a string")
                        continue
                    found.extend(bare_objects(answer, components, where))
    return found


TYPES = {"string": str, "integer": int, "boolean": bool, "number": (int, float)}


def misfits(value, schema: dict, components: dict, where: str = "") -> list[str]:
    """Where `value` (an example) does not have the shape `schema` says."""
    if "$ref" in schema:
        return misfits(value, components[schema["$ref"].rsplit("/", 1)[-1]], components, where)
    if value is None:
        fine = schema.get("nullable") or None in schema.get("enum", ())
        return [] if fine else [f"{where}: null"]
    if "allOf" in schema:
        return [m for part in schema["allOf"] for m in misfits(value, part, components, where)]
    if "oneOf" in schema or "anyOf" in schema:
        options = schema.get("oneOf", []) + schema.get("anyOf", [])
        fits = any(not misfits(value, option, components, where) for option in options)
        return [] if fits else [f"{where}: fits no option"]
    kind = schema.get("type")
    if kind == "array":
        if not isinstance(value, list):
            return [f"{where}: not a list"]
        items = schema.get("items", {})
        return [
            m for i, v in enumerate(value) for m in misfits(v, items, components, f"{where}[{i}]")
        ]
    if kind == "object" or "properties" in schema:
        if not isinstance(value, dict):
            return [f"{where}: not an object"]
        properties = schema.get("properties", {})
        values = schema.get("additionalProperties")
        found = [
            f"{where}.{name}: missing" for name in schema.get("required", ()) if name not in value
        ]
        for name, member in value.items():
            if name in properties:
                found += misfits(member, properties[name], components, f"{where}.{name}")
            elif isinstance(values, dict):
                found += misfits(member, values, components, f"{where}.{name}")
            else:
                found.append(f"{where}.{name}: not in the schema")
        return found
    wrong_type = kind in TYPES and not isinstance(value, TYPES[kind])
    if wrong_type or (isinstance(value, bool) and kind != "boolean"):  # a bool is an int too
        return [f"{where}: not {kind}: {value!r}"]
    if "enum" in schema and value not in schema["enum"]:
        return [f"{where}: {value!r} not in {schema['enum']}"]
    if "pattern" in schema and not re.search(schema["pattern"], value):
        return [f"{where}: {value!r} does not match {schema['pattern']}"]
    return []


@pytest.fixture(scope="module")
def schema():
    return SchemaGenerator().get_schema(request=None, public=True)


def test_no_answer_is_a_bare_object(schema):
    assert undescribed_answers(schema) == []


def test_every_answer_example_has_its_answer_s_shape(schema):
    """The examples on the OpenAPI page are the answers' own shape, key for key."""
    components = schema["components"]["schemas"]
    checked, found = 0, []
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            for status, response in operation.get("responses", {}).items():
                content = response.get("content", {}).get("application/json", {})
                for name, example in content.get("examples", {}).items():
                    where = f"{method.upper()} {path} {status} {name}"
                    found += misfits(example["value"], content["schema"], components, where)
                    checked += 1

    assert found == []
    assert checked >= 20


def test_the_example_check_finds_misfits():
    components = {
        "A": {
            "type": "object",
            "properties": {
                "n": {"type": "integer"},
                "s": {"type": "string", "nullable": True, "pattern": "^[0-9]+$"},
            },
            "required": ["n", "s"],
        }
    }
    ref = {"$ref": "#/components/schemas/A"}

    assert misfits({"n": 1, "s": None}, ref, components) == []
    assert misfits({"n": True, "s": "x", "z": 0}, ref, components) == [
        ".n: not integer: True",
        ".s: 'x' does not match ^[0-9]+$",
        ".z: not in the schema",
    ]
    assert misfits({"s": "1"}, ref, components) == [".n: missing"]


def test_files_are_strings(schema):
    paths = schema["paths"]
    csv = paths["/api/v1/customers/{external_id}/usage.csv"]["get"]["responses"]["200"]
    pdf = paths["/api/v1/customers/{external_id}/invoices/{number}/pdf"]["get"]["responses"]
    assert csv["content"]["text/csv"]["schema"]["type"] == "string"
    assert pdf["200"]["content"]["application/pdf"]["schema"]["type"] == "string"


def test_the_check_finds_bare_objects():
    """The check itself can fail: a free-form object, at the top or nested, is caught."""
    bare = {"type": "object", "additionalProperties": {}}
    schema = {
        "paths": {
            "/a": {
                "get": {"responses": {"200": {"content": {"application/json": {"schema": bare}}}}}
            },
            "/b": {
                "post": {
                    "responses": {
                        "201": {"content": {"application/json": {"schema": {"$ref": "#/c/B"}}}},
                        "400": {"content": {"application/json": {"schema": bare}}},
                    }
                }
            },
            "/c": {
                "get": {
                    "responses": {
                        "200": {"content": {"application/pdf": {"schema": bare}}},
                    }
                }
            },
        },
        "components": {
            "schemas": {
                "B": {
                    "type": "object",
                    "properties": {
                        "ok": {"type": "string"},
                        "map": {"type": "object", "additionalProperties": {"type": "integer"}},
                        "items": {"type": "array", "items": {"type": "object"}},
                    },
                }
            }
        },
    }

    assert undescribed_answers(schema) == [
        "GET /a 200 application/json",
        "POST /b 201 application/json B.items[]",
        "GET /c 200 application/pdf: a file download that is not a string",
    ]


@pytest.mark.parametrize(
    ("path", "method", "status", "component"),
    [
        ("/api/v1/customers/{external_id}/usage", "get", "200", "Usage"),
        ("/api/v1/customers/{external_id}/usage/rerate", "get", "200", "Rerate"),
        ("/api/v1/customers/{external_id}/usage/rerate", "post", "202", "Rerate"),
        ("/api/v1/customers/{external_id}/invoices", "get", "200", "PaginatedInvoiceList"),
        ("/api/v1/customers/{external_id}/invoices/{number}", "get", "200", "InvoiceDetail"),
        ("/api/v1/customers/{external_id}/invoice-preview", "get", "200", "InvoicePreview"),
        (
            "/api/v1/customers/{external_id}/invoices/{number}/lines/{position}/events",
            "get",
            "200",
            "PaginatedLineEventList",
        ),
        (
            "/api/v1/customers/{external_id}/invoices/{number}/credit-notes",
            "post",
            "201",
            "CreditNote",
        ),
        ("/api/v1/customers/{external_id}/wallet", "get", "200", "Wallet"),
        ("/api/v1/authorizations", "post", "200", "Authorization"),
        ("/api/v1/holds/{hold_id}", "get", "200", "Hold"),
        ("/api/v1/holds/{hold_id}/release", "post", "200", "Hold"),
        ("/api/v1/rate-cards/{name}/corrections", "post", "200", "PriceCorrectionPreview"),
        ("/api/v1/rate-cards/{name}/corrections", "post", "201", "PriceCorrectionApplied"),
    ],
)
def test_answers_are_named_components(schema, path, method, status, component):
    content = schema["paths"][path][method]["responses"][status]["content"]
    assert content["application/json"]["schema"] == {"$ref": f"#/components/schemas/{component}"}


def test_an_invoice_is_one_shape_in_the_list_and_alone(schema):
    components = schema["components"]["schemas"]
    listed = components["PaginatedInvoiceList"]["properties"]["results"]["items"]
    invoice = components["Invoice"]["properties"]
    detail = components["InvoiceDetail"]["properties"]
    preview = components["InvoicePreview"]["properties"]

    assert listed == {"$ref": "#/components/schemas/Invoice"}
    assert list(detail) == [*invoice, "lines", "credit_notes"]
    assert list(preview) == list(detail)


def test_errors_are_described(schema):
    components = schema["components"]["schemas"]
    usage = schema["paths"]["/api/v1/customers/{external_id}/usage"]["get"]["responses"]

    assert components["Error"]["properties"]["detail"]["type"] == "string"
    assert components["FieldErrors"]["additionalProperties"]["items"] == {"type": "string"}
    assert usage["404"]["content"]["application/json"]["schema"]["$ref"].endswith("/Error")
    assert usage["400"]["content"]["application/json"]["schema"]["$ref"].endswith("/FieldErrors")


def test_token_counts_are_the_rollups_token_columns():
    """The usage answer's `tokens` name every token column, in the selector's order."""
    from billing.api.usage_serializers import TokensSerializer

    assert tuple(TokensSerializer().fields) == TOKEN_COLUMNS


def test_every_operation_may_answer_429_with_retry_after(schema):
    operations = [
        (path, method, operation)
        for path, methods in schema["paths"].items()
        for method, operation in methods.items()
    ]

    assert len(operations) > 50
    for path, method, operation in operations:
        answer = operation["responses"]["429"]
        assert answer["headers"]["Retry-After"]["schema"] == {"type": "integer"}, (path, method)
        assert answer["content"]["application/json"]["schema"]["$ref"].endswith("/Error")
