"""Request validation built from the served model's schema and manifest.

The pydantic model accepts exactly: the model's feature attributes, the schema's informational
text attributes (stored, never scored), and channel metadata. Everything else is rejected
(``extra="forbid"``), so a client cannot set ``decision``, ``score``, ``model_version`` or ``id``.

* numeric attributes: JSON numbers (not booleans, not numbers in strings), within the training
  range widened by ``RANGE_MARGIN`` x the range on each side, never below 0 when training saw
  no negative value, and within the schema's own ``minimum``/``maximum``;
* categorical attributes: one of the schema's categories, or of those seen in training;
* attributes missing in training (manifest ``nullable``) may be null or absent; all others are
  required.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    ValidationError,
    create_model,
)
from pydantic.json_schema import GetJsonSchemaHandler, JsonSchemaValue
from pydantic_core import PydanticCustomError, core_schema

RANGE_MARGIN = 0.5
Channel = Literal["web", "mobile", "chatbot", "call_center", "mail"]
CHANNELS: tuple[str, ...] = ("web", "mobile", "chatbot", "call_center", "mail")
METADATA = ("channel", "applicant_id", "external_ref")

# Characters no request string may hold: PostgreSQL cannot store NUL, control characters forge
# log lines and terminal output, and a lone UTF-16 surrogate is not text any store can encode.
# Identifiers (ids, references, outcome words, filters) refuse every C0 and C1 control
# character and the Unicode line separators; free text keeps tab, line feed and carriage return;
# a header token (Idempotency-Key) is visible ASCII and spaces, not blank.
_BAD = {
    "identifier": re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]"),
    "text": re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]"),
    "token": re.compile("[^\x20-\x7e]|^ *$"),
}
# the same rules as JSON Schema patterns (OpenAPI; surrogates cannot be written in one)
PATTERNS = {
    "identifier": "^[^\\x00-\\x1f\\x7f-\\x9f\\u2028\\u2029]*$",
    "text": "^[^\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f\\x7f]*$",
    "token": "^[ -~]*[!-~][ -~]*$",
}
_WHY = {
    "identifier": "holds a control character (U+0000-U+001F, U+007F-U+009F), a line separator "
                  "or an unpaired surrogate: not allowed in this field",
    "text": "holds a control character (U+0000-U+001F other than tab and line breaks, U+007F) "
            "or an unpaired surrogate: not allowed in this field",
    "token": "must be visible ASCII characters (spaces allowed, not only spaces), e.g. a UUID",
}
UNSAFE_TYPE = "string_unsafe_character"
StringKind = Literal["identifier", "text", "token"]


def unsafe_text(value: str, kind: StringKind = "identifier") -> bool:
    """Whether ``value`` holds a character a request string of this kind may not hold."""
    return _BAD[kind].search(value) is not None


class SafeString:
    """Pydantic (and FastAPI parameter) metadata for a request string: refuses what
    ``unsafe_text`` finds (a 422 of type ``string_unsafe_character`` naming the field, never its
    value) and documents the rule as a JSON Schema ``pattern``."""

    def __init__(self, kind: StringKind = "identifier") -> None:
        self.kind = kind

    def __get_pydantic_core_schema__(self, source: Any,
                                     handler: GetCoreSchemaHandler) -> core_schema.CoreSchema:
        return core_schema.no_info_after_validator_function(self.check, handler(source))

    def __get_pydantic_json_schema__(self, schema: core_schema.CoreSchema,
                                     handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        js = handler.resolve_ref_schema(handler(schema))
        js["pattern"] = PATTERNS[self.kind]
        return js

    def check(self, value: Any) -> Any:
        if isinstance(value, str) and unsafe_text(value, self.kind):
            raise PydanticCustomError(UNSAFE_TYPE, _WHY[self.kind])
        return value

    def __hash__(self) -> int:
        return hash(self.kind)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SafeString) and other.kind == self.kind


IDENTIFIER = SafeString("identifier")
FREE_TEXT = SafeString("text")
HEADER_TOKEN = SafeString("token")
Identifier = Annotated[str, IDENTIFIER]  # ids, references, words: no control characters
Ref128 = Annotated[str, Field(max_length=128), IDENTIFIER]
Word64 = Annotated[str, Field(max_length=64), IDENTIFIER]


class ApplicationMeta(BaseModel):
    """Channel metadata every application may carry (the rest are applicant attributes)."""

    model_config = ConfigDict(extra="forbid")

    channel: Channel | None = Field(
        default=None,
        description="Where the application came from: one of the channels the API key was "
                    "created for (another is a 403); default: the key's default channel.")
    applicant_id: Ref128 | None = Field(default=None,
                                        description="The lender's own applicant reference.")
    external_ref: Ref128 | None = Field(default=None,
                                     description="The channel's reference (form id, call id...).")


def numeric_bounds(name: str, manifest: dict[str, Any], attr: dict[str, Any]
                   ) -> tuple[float | None, float | None]:
    """Allowed [low, high] for a numeric attribute: training range with a margin, schema limits."""
    lo: float | None = None
    hi: float | None = None
    rng = (manifest.get("ranges") or {}).get(name)
    if rng:
        mn, mx = float(rng[0]), float(rng[1])
        span = max(mx - mn, abs(mx), 1.0)
        lo, hi = mn - RANGE_MARGIN * span, mx + RANGE_MARGIN * span
        if mn >= 0:
            lo = max(lo, 0.0)
    if attr.get("minimum") is not None:
        lo = float(attr["minimum"]) if lo is None else max(lo, float(attr["minimum"]))
    if attr.get("maximum") is not None:
        hi = float(attr["maximum"]) if hi is None else min(hi, float(attr["maximum"]))
    return lo, hi


def _field(name: str, kind: str, manifest: dict[str, Any], attr: dict[str, Any],
           nullable: bool) -> tuple[Any, Any]:
    desc = attr.get("description") or name
    labels = attr.get("labels") or {}
    if labels:  # the OpenAPI docs say what each code means
        desc = desc.rstrip(". ") + ". Codes: " + "; ".join(f"{c} = {w}"
                                                         for c, w in labels.items()) + "."
    if kind == "string":
        allowed = attr.get("categories") or (manifest.get("categories") or {}).get(name)
        typ: Any = (Literal[tuple(str(c) for c in allowed)] if allowed  # type: ignore[misc]
                    else Annotated[str, Field(max_length=200), FREE_TEXT])
        extra: dict[str, Any] = {}
    else:
        lo, hi = numeric_bounds(name, manifest, attr)
        typ = float
        extra = {"ge": lo, "le": hi, "allow_inf_nan": False}
        extra = {k: v for k, v in extra.items() if v is not None}
        extra["strict"] = True  # a number, not "72000" and not true (ints are fine)
    if nullable:
        return typ | None, Field(default=None, description=desc, **extra)
    return typ, Field(..., description=desc, **extra)


def build_request_model(manifest: dict[str, Any], schema: dict[str, Any]) -> type[BaseModel]:
    """A pydantic model for one application of this model version (features + metadata)."""
    attrs = {a["name"]: a for a in schema.get("attributes", [])}
    nullable = set(manifest.get("nullable") or [])
    fields: dict[str, Any] = {}
    for name in manifest["features"]:
        fields[name] = _field(name, manifest["inputs"][name], manifest, attrs.get(name, {}),
                              name in nullable)
    excluded = set(schema.get("excluded") or [])
    for name, a in attrs.items():  # informational text (e.g. job title): stored, not scored
        if (name not in fields and a.get("type") == "text" and not a.get("post_decision")
                and not a.get("protected") and name not in excluded and name not in METADATA):
            fields[name] = (Annotated[str, Field(max_length=500), FREE_TEXT] | None,
                            Field(default=None, description=a.get("description") or name))
    model_name = "Application_" + "".join(ch if ch.isalnum() else "_"
                                          for ch in str(manifest.get("name", "model")))
    return create_model(model_name, __base__=ApplicationMeta, **fields)


def _reject_bools(data: Any, numeric: frozenset[str]) -> list[dict[str, Any]]:
    if not isinstance(data, dict):
        return []
    return [{"loc": ["body", k], "field": k, "type": "float_type",
             "msg": "Input should be a number, not a boolean"}
            for k in numeric if isinstance(data.get(k), bool)]


class RequestValidator:
    """Validates JSON bodies against one model version; errors are JSON-able 422 details."""

    def __init__(self, manifest: dict[str, Any], schema: dict[str, Any]) -> None:
        self.model = build_request_model(manifest, schema)
        self.features: list[str] = list(manifest["features"])
        self._numeric = frozenset(f for f in self.features if manifest["inputs"][f] != "string")

    def validate(self, data: Any, *, index: int | None = None
                 ) -> tuple[BaseModel | None, list[dict[str, Any]]]:
        """The validated application, or None and a list of errors naming each field and why."""
        errors = _reject_bools(data, self._numeric)
        said = {e["field"] for e in errors}
        try:
            obj = self.model.model_validate(data)
        except ValidationError as exc:
            errors += [d for d in (_detail(e, index) for e in
                                   exc.errors(include_url=False))
                       if d["field"] not in said]
            obj = None
        if errors:
            return None, [_null_named(e, data) for e in errors]
        return obj, []

    def json_schema(self) -> dict[str, Any]:
        """JSON Schema of an application body for this model (served at /v1/schema)."""
        return self.model.model_json_schema()


def _null_named(err: dict[str, Any], data: Any) -> dict[str, Any]:
    """A null (or, from a file, an empty cell) for a required attribute says so, instead of
    the type's complaint (a categorical's would list every allowed category)."""
    field = err.get("field")
    if isinstance(data, dict) and field in data and data[field] is None:
        return {**err, "type": "missing",
                "msg": "Field required by the served model's schema: it was never missing in "
                       "training, so it may not be null or empty"}
    return err


def error_message(err: Any) -> str:
    """A pydantic error's message without any part of the submitted value.

    Most of pydantic's messages name only the rule, but a parsing error appends its parser's
    complaint (``Input should be a valid UUID, invalid character: found `x` at 4``): that part
    is dropped. As a last guard, a message that still contains the input says only the rule.
    """
    kind = str(err.get("type") or "invalid")
    msg = str(err.get("msg") or kind)
    ctx = err.get("ctx") or {}
    if "error" in ctx and kind != "value_error":
        msg = msg.split(",", 1)[0]
    value = err.get("input")
    if isinstance(value, str | int | float) and not isinstance(value, bool):
        text = str(value)
        if len(text) >= 3 and text in msg:
            msg = f"invalid value ({kind})"
    return msg


def _detail(err: Any, index: int | None) -> dict[str, Any]:
    loc = [str(x) for x in err.get("loc", ())]
    field = ".".join(loc) or "body"
    msg = error_message(err)
    if not loc and err.get("type") in ("model_type", "model_attributes_type", "dict_type"):
        msg = "an application is a JSON object of attributes (POST /v1/score also takes a list)"
    elif err.get("type") == "float_type":
        msg = "Input should be a JSON number of ordinary size (not a string, not a boolean)"
    elif err.get("type") == "extra_forbidden":
        msg = "Unknown field: not an attribute of the served model's schema (clients cannot set it)"
    elif err.get("type") == "missing":
        msg = "Field required by the served model's schema"
    prefix = ["body"] if index is None else ["body", str(index)]
    return {"loc": [*prefix, *loc], "field": field, "msg": msg, "type": err.get("type")}
