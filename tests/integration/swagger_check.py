"""A small Swagger 2.0 response checker for the fake forge's tests.

Load a spec with `Spec(path)`, then `spec.check(method, path, status, body)`
returns a list of problems (empty when the response fits the spec):

- the operation is looked up by path template and method in `paths`
  (`path` is the request path without the `/api/v1` base path); literal
  segments beat `{parameters}`, as in Gitea's router; a `{filepath}`
  parameter takes the rest of the path, slashes included (Gitea routes it
  as `/*`);
- the status must be one the operation declares (or in `extra_statuses`,
  for answers that come from middleware the spec does not describe, such
  as 401 for a bad token or a fault injected by the test);
- a body is validated against the declared response schema: `$ref` is
  resolved into `definitions`; JSON types (string, integer, boolean,
  number, object, array) are checked; `format: date-time` must parse as
  RFC 3339 (what Go's time.Parse(time.RFC3339) accepts); `format: int64`
  must fit in 64 bits; `enum` is honoured; and every property present must
  be declared in the schema (Gitea's structs have no extra fields).
  Error bodies of responses that declare no schema are checked against
  `definitions/APIError` ({"message", "url"}).
- `type: file` (a raw file) must be bytes, not decoded JSON; with
  `content_type` given, a 2xx answer's media type must be one the
  operation `produces` (else the document's).

Null: Swagger 2.0 cannot say "nullable", but Go marshals nil pointers and
nil slices as null. So null is accepted where the Go field is a pointer or
a slice: a `$ref` object, an array, a `date-time` string (Gitea uses
*time.Time), and the few plain pointer fields listed in NULLABLE.
"""

import datetime
import json
import re

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

# (definition, property) pairs that are Go pointers to scalars, so null.
NULLABLE = {
    ("PullRequest", "merge_commit_sha"),  # *string in modules/structs
}

RFC3339_RE = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d+)?"
    r"(Z|[+-]\d{2}:\d{2})$"
)


def parse_rfc3339(text):
    """Return an aware datetime for an RFC 3339 timestamp, else raise
    ValueError. Accepts what Go's time.Parse(time.RFC3339, ...) accepts:
    upper-case T and Z, optional fraction, numeric offset with a colon."""
    m = RFC3339_RE.match(text)
    if not m:
        raise ValueError("not RFC 3339: %r" % (text,))
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    frac = m.group(7) or ""
    micro = int((frac[1:] + "000000")[:6]) if frac else 0
    zone = m.group(8)
    if zone == "Z":
        tz = datetime.timezone.utc
    else:
        sign = 1 if zone[0] == "+" else -1
        hh, mm = int(zone[1:3]), int(zone[4:6])
        if hh > 23 or mm > 59:
            raise ValueError("bad offset in %r" % (text,))
        tz = datetime.timezone(sign * datetime.timedelta(hours=hh, minutes=mm))
    return datetime.datetime(year, month, day, hour, minute, second, micro, tz)


class Spec:
    """One Swagger 2.0 file: operations, responses and a validator."""

    def __init__(self, path):
        with open(path, encoding="utf-8") as f:
            self.doc = json.load(f)
        self.name = path.rsplit("/", 1)[-1]
        self.base_path = self.doc.get("basePath", "")
        self.definitions = self.doc.get("definitions", {})
        self._templates = []
        for template in self.doc.get("paths", {}):
            parts = template.strip("/").split("/")
            regex = "^/" + "/".join(
                ".+" if p == "{filepath}" else
                "[^/]+" if p.startswith("{") else re.escape(p) for p in parts
            ) + "$"
            params = sum(1 for p in parts if p.startswith("{"))
            self._templates.append((params, template, re.compile(regex)))
        # Fewer parameters first: /issues/comments before /issues/{index}.
        self._templates.sort(key=lambda t: (t[0], t[1]))

    # -- lookup -----------------------------------------------------------

    def find_operation(self, method, path):
        """Return (template, operation) for a request path (without the
        base path), or (None, None)."""
        method = method.lower()
        for _, template, regex in self._templates:
            if regex.match(path):
                op = self.doc["paths"][template].get(method)
                if op is not None:
                    return template, op
        return None, None

    def resolve(self, schema):
        seen = 0
        while isinstance(schema, dict) and "$ref" in schema:
            ref = schema["$ref"]
            if not ref.startswith("#/"):
                raise ValueError("external $ref not supported: " + ref)
            node = self.doc
            for part in ref[2:].split("/"):
                node = node[part]
            schema = node
            seen += 1
            if seen > 32:
                raise ValueError("$ref loop at " + ref)
        return schema

    def response_of(self, op, status):
        """The response object declared for a status (or `default`)."""
        responses = op.get("responses", {})
        resp = responses.get(str(status), responses.get("default"))
        return self.resolve(resp) if resp is not None else None

    # -- checking ---------------------------------------------------------

    def check(self, method, path, status, body, extra_statuses=(), content_type=None):
        """Problems with one response; `body` is the decoded JSON (None for
        an empty body), or the bytes of a `type: file` answer."""
        if path.startswith(self.base_path + "/"):
            path = path[len(self.base_path):]
        template, op = self.find_operation(method, path)
        if op is None:
            return ["%s: no operation %s %s" % (self.name, method, path)]
        where = "%s %s %s -> %d" % (self.name, method.upper(), template, status)
        if content_type is not None and 200 <= status < 300:
            produces = op.get("produces", self.doc.get("produces", []))
            media = content_type.split(";", 1)[0].strip().lower()
            if media not in produces:
                return ["%s: Content-Type %s not in produces %s" % (where, media, produces)]
        resp = self.response_of(op, status)
        if resp is None and status not in extra_statuses:
            declared = sorted(op.get("responses", {}))
            return ["%s: status not declared (declared: %s)" % (where, declared)]
        schema = (resp or {}).get("schema")
        if schema is not None and self.resolve(schema).get("type") == "file":
            if not isinstance(body, bytes):
                return ["%s $: expected the file's bytes, got %s" % (where, type(body).__name__)]
            return []
        if schema is not None and body is None and status < 300:
            if self.resolve(schema).get("type") != "array":  # only nil slices are null
                return ["%s: null or empty body where a schema is declared" % where]
            return []
        if schema is None:
            if status >= 400 and isinstance(body, dict):
                schema = {"$ref": "#/definitions/APIError"}
            elif body not in (None, b"", ""):
                return ["%s: body present but no schema declared" % where]
            else:
                return []
        return self.validate(body, schema, where + " $")

    def validate(self, value, schema, where="$", nullable=False):
        """Problems with `value` against `schema` (a list of strings)."""
        is_ref = isinstance(schema, dict) and "$ref" in schema
        ref_name = schema["$ref"].rsplit("/", 1)[-1] if is_ref else None
        schema = self.resolve(schema)
        kind = schema.get("type")
        if value is None:
            if nullable or is_ref or kind == "array" or schema.get("format") == "date-time":
                return []
            return ["%s: null where %s expected" % (where, kind or "value")]
        if kind == "object" or (kind is None and "properties" in schema):
            return self._validate_object(value, schema, where, ref_name)
        if kind == "array":
            if not isinstance(value, list):
                return ["%s: expected array, got %s" % (where, type(value).__name__)]
            problems = []
            for i, item in enumerate(value):
                problems += self.validate(item, schema.get("items", {}), "%s[%d]" % (where, i))
            return problems
        if kind == "string":
            return self._validate_string(value, schema, where)
        if kind == "integer":
            if isinstance(value, bool) or not isinstance(value, int):
                return ["%s: expected integer, got %r" % (where, value)]
            if schema.get("format") == "int64" and not INT64_MIN <= value <= INT64_MAX:
                return ["%s: %d does not fit int64" % (where, value)]
            if schema.get("format") == "int32" and not -(2**31) <= value < 2**31:
                return ["%s: %d does not fit int32" % (where, value)]
            return []
        if kind == "number":
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                return ["%s: expected number, got %r" % (where, value)]
            return []
        if kind == "boolean":
            if not isinstance(value, bool):
                return ["%s: expected boolean, got %r" % (where, value)]
            return []
        if kind is None:
            return []  # untyped schema (e.g. `{}`): anything goes
        return ["%s: unsupported schema type %r" % (where, kind)]

    def _validate_object(self, value, schema, where, ref_name):
        if not isinstance(value, dict):
            return ["%s: expected object, got %s" % (where, type(value).__name__)]
        problems = []
        props = schema.get("properties", {})
        additional = schema.get("additionalProperties")
        for key in schema.get("required", []):
            if key not in value:
                problems.append("%s: required property %r missing" % (where, key))
        for key, item in value.items():
            sub = "%s.%s" % (where, key)
            if key in props:
                nullable = (ref_name, key) in NULLABLE
                problems += self.validate(item, props[key], sub, nullable)
            elif isinstance(additional, dict):
                problems += self.validate(item, additional, sub)
            elif additional is not True:
                problems.append("%s: property not declared in %s" % (sub, ref_name or "schema"))
        return problems

    def _validate_string(self, value, schema, where):
        if not isinstance(value, str):
            return ["%s: expected string, got %r" % (where, value)]
        fmt = schema.get("format")
        if fmt == "date-time":
            try:
                parse_rfc3339(value)
            except ValueError as e:
                return ["%s: %s" % (where, e)]
        if "enum" in schema and value not in schema["enum"]:
            return ["%s: %r not in %s" % (where, value, schema["enum"])]
        return []
