"""docs/results.schema.json: sample results files that `ccci harness`
writes validate against it, files that break it in one member do not, and
its enums agree with the one tier table (include/ccci/runs/levels.h).

The validator below implements the part of JSON Schema draft 2020-12 the
schema uses (type, enum, const, required, properties, additionalProperties,
minProperties, pattern, minimum, minLength, allOf, $ref to #/$defs); a
keyword it does not know fails the test, so the schema cannot silently
outgrow it."""

import copy
import json
import os
import re
import unittest

SRC = os.environ.get("CCCI_SOURCE_DIR") or os.path.join(os.path.dirname(__file__), "..", "..")
SCHEMA = os.path.join(SRC, "docs", "results.schema.json")
LEVELS_H = os.path.join(SRC, "include", "ccci", "runs", "levels.h")

KNOWN = {"$schema", "title", "description", "type", "enum", "const", "required", "properties",
         "additionalProperties", "minProperties", "pattern", "minimum", "minLength", "allOf",
         "$ref", "$defs", "format", "items", "maxItems", "maxLength"}
TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


def errors(schema, value, root, path="$"):
    """The list of violations of `schema` by `value` (empty: valid)."""
    unknown = set(schema) - KNOWN
    if unknown:
        raise AssertionError("%s: keyword(s) the validator does not know: %s" % (path, unknown))
    out = []
    if "$ref" in schema:
        ref = schema["$ref"]
        assert ref.startswith("#/$defs/"), ref
        out += errors(root["$defs"][ref[len("#/$defs/"):]], value, root, path)
    for sub in schema.get("allOf", []):
        out += errors(sub, value, root, path)
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(TYPES[t](value) for t in types):
            return out + ["%s: %r is not of type %s" % (path, value, types)]
    if "enum" in schema and value not in schema["enum"]:
        out.append("%s: %r not in %s" % (path, value, schema["enum"]))
    if "const" in schema and value != schema["const"]:
        out.append("%s: %r is not %r" % (path, value, schema["const"]))
    if isinstance(value, str):
        if "pattern" in schema and not re.search(schema["pattern"], value):
            out.append("%s: %r does not match %s" % (path, value, schema["pattern"]))
        if len(value) < schema.get("minLength", 0):
            out.append("%s: %r is too short" % (path, value))
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            out.append("%s: %r is too long" % (path, value))
    if isinstance(value, list):
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            out.append("%s: more than %d items" % (path, schema["maxItems"]))
        if "items" in schema:
            for i, v in enumerate(value):
                out += errors(schema["items"], v, root, "%s[%d]" % (path, i))
    if TYPES["number"](value) and "minimum" in schema and value < schema["minimum"]:
        out.append("%s: %r < %r" % (path, value, schema["minimum"]))
    if isinstance(value, dict):
        for k in schema.get("required", []):
            if k not in value:
                out.append("%s: %s is required" % (path, k))
        if len(value) < schema.get("minProperties", 0):
            out.append("%s: fewer than %d members" % (path, schema["minProperties"]))
        props = schema.get("properties", {})
        for k, v in value.items():
            if k in props:
                out += errors(props[k], v, root, "%s.%s" % (path, k))
            elif schema.get("additionalProperties", True) is False and "properties" in schema:
                out.append("%s: unknown member %s" % (path, k))
    return out


def tier(status, reason=None, duration=1.5, checked=None):
    t = {"status": status, "reason": reason, "started_at": "2026-12-07T03:00:00Z",
         "duration_s": duration, "step": None if status == "skip" else "x"}
    if checked is not None:
        t["data_checked"] = checked
    return t


def full_run():
    return {
        "version": 1, "run": "20261207-030000-000", "recipe": "hello", "repo": "org/hello",
        "pr": 3, "sha": "0123456789abcdef0123456789abcdef01234567", "ref": "feature",
        "domain": "hello-pr3.ci.example.org", "server": "default", "base_version": "1.0.0+1.0",
        "quick": False,
        "tiers": {"deploy": tier("pass"), "upgrade": tier("pass", checked=True),
                  "install": tier("pass"), "backup": tier("pass"),
                  "restore": tier("pass", checked=True), "custom": tier("pass")},
        "level": "L4", "level_name": "custom", "deploys": 2,
        "invariants": {"deploy_budget_ok": True, "teardown_clean": True, "secrets_clean": True},
        "error": None, "started_at": "2026-12-07T03:00:00Z", "duration_s": 42.1,
    }


def quick_run():
    r = full_run()
    r.update(quick=True, base_version=None, level="L1", level_name="install", deploys=1,
             tiers={"deploy": tier("pass"), "install": tier("pass")})
    return r


def stopped_run():
    """Written early: cancelled during the backup, no release to upgrade
    from, a local run."""
    r = full_run()
    r.update(repo=None, pr=None, sha=None, ref=None, level="L1", level_name="install",
             error="stopped by SIGTERM",
             tiers={"deploy": tier("pass"), "upgrade": tier("skip", "no release", 0, checked=False),
                    "install": tier("pass"), "backup": tier("cancelled", "SIGTERM")})
    return r


def levels_h():
    with open(LEVELS_H) as fh:
        return fh.read()


def macro(text, name):
    """The body of `#define name(X) ...` (continuation lines joined)."""
    m = re.search(r"#define %s\(X\)((?:.*\\\n)*.*)" % name, text)
    assert m, name
    return m.group(1).replace("\\\n", " ")


class SchemaTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        with open(SCHEMA) as fh:
            cls.schema = json.load(fh)

    def check(self, value):
        return errors(self.schema, value, self.schema)

    def test_samples_validate(self):
        for r in (full_run(), quick_run(), stopped_run()):
            self.assertEqual(self.check(r), [], json.dumps(r))
        for s in ("fail", "skip", "error", "cancelled", "timeout"):
            r = full_run()
            r["tiers"]["custom"] = tier(s, "why")
            self.assertEqual(self.check(r), [])

    def test_every_required_member_is_required(self):
        base = full_run()
        for k in self.schema["required"]:
            r = copy.deepcopy(base)
            del r[k]
            self.assertIn("$: %s is required" % k, self.check(r))
        for k in ("status", "reason", "started_at", "duration_s", "step"):
            r = copy.deepcopy(base)
            del r["tiers"]["install"][k]
            self.assertIn("$.tiers.install: %s is required" % k, self.check(r))
        for t in ("upgrade", "restore"):
            r = copy.deepcopy(base)
            del r["tiers"][t]["data_checked"]
            self.assertIn("$.tiers.%s: data_checked is required" % t, self.check(r))
        for k in ("deploy_budget_ok", "teardown_clean", "secrets_clean"):
            r = copy.deepcopy(base)
            del r["invariants"][k]
            self.assertNotEqual(self.check(r), [])

    def test_bad_values_do_not_validate(self):
        bad = [
            ("level", "L5"), ("level", "L"), ("level", 4), ("level", "l4"), ("level", "L4 "),
            ("level_name", "full"), ("version", 2), ("quick", "no"), ("pr", 0), ("pr", "3"),
            ("sha", "abc"), ("deploys", -1), ("deploys", 1.5), ("error", 1), ("duration_s", -1),
            ("tiers", {}), ("tiers", {"smoke": tier("pass")}), ("run", "a/b"), ("domain", ""),
            ("invariants", {"deploy_budget_ok": 1, "teardown_clean": True, "secrets_clean": True}),
            ("extra", 1),
        ]
        for k, v in bad:
            r = full_run()
            r[k] = v
            self.assertNotEqual(self.check(r), [], (k, v))
        for k, v in (("status", "running"), ("status", "PASS"), ("duration_s", "1"),
                     ("reason", 3), ("extra", True), ("data_checked", "yes")):
            r = full_run()
            r["tiers"]["install"][k] = v
            self.assertNotEqual(self.check(r), [], (k, v))

    def test_artifacts(self):
        """Optional arrays of run-dir-relative paths under artifacts/, the
        rule the reader (src/runs/results.c) applies."""
        r = full_run()
        r["artifacts"] = ["artifacts/install.png", "artifacts/custom/page-1.html"]
        r["tiers"]["install"]["artifacts"] = ["artifacts/install.png"]
        self.assertEqual(self.check(r), [])
        r["tiers"]["install"]["artifacts"] = []
        self.assertEqual(self.check(r), [])
        for bad in ("artifacts/../meta.json", "/etc/passwd", "install.png", "artifacts/",
                    "artifacts/.x", "artifacts/a b", "artifacts//x", "artifacts/x/",
                    "artifacts/" + "a" * 119, 7):
            for where in ("top", "tier"):
                r = full_run()
                if where == "top":
                    r["artifacts"] = [bad]
                else:
                    r["tiers"]["install"]["artifacts"] = [bad]
                self.assertNotEqual(self.check(r), [], (where, bad))
        r = full_run()
        r["artifacts"] = ["artifacts/f%d" % i for i in range(17)]
        self.assertNotEqual(self.check(r), [])
        r["artifacts"] = "artifacts/install.png"
        self.assertNotEqual(self.check(r), [])

    def test_enums_match_the_tier_table(self):
        h = levels_h()
        tiers = re.findall(r'X\(\w+, "([a-z]+)", \d', macro(h, "CCCI_TIERS"))
        statuses = re.findall(r'X\(\w+, "([a-z]+)",', macro(h, "CCCI_TIER_STATUSES"))
        names = re.findall(r'X\((\d), "([^"]+)"\)', macro(h, "CCCI_LEVELS"))
        self.assertEqual(tiers, ["deploy", "upgrade", "install", "backup", "restore", "custom"])
        self.assertEqual(list(self.schema["properties"]["tiers"]["properties"]), tiers)
        self.assertEqual(self.schema["$defs"]["tier"]["properties"]["status"]["enum"], statuses)
        self.assertEqual(self.schema["properties"]["level_name"]["enum"], [n for _, n in names])
        self.assertEqual(self.schema["properties"]["level"]["pattern"],
                         "^L[0-%s]$" % names[-1][0])

    def test_the_validator_can_fail(self):
        with self.assertRaises(AssertionError):
            errors({"uniqueItems": True}, [], {})
        self.assertNotEqual(errors({"maxLength": 3}, "abcd", {}), [])
        self.assertNotEqual(errors({"maxItems": 1}, [1, 2], {}), [])
        self.assertNotEqual(errors({"items": {"type": "string"}}, ["a", 1], {}), [])
        self.assertNotEqual(errors({"type": "integer"}, True, {}), [])


if __name__ == "__main__":
    unittest.main()
