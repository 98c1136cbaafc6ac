"""Schema: JSON round trip, AWS ML import, inference, and errors that name file, attribute, row."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from loanrisk.errors import DataError, LoanriskError, SchemaError
from loanrisk.schema import Attribute, Schema


def small_schema(**kw: object) -> Schema:
    attrs = [
        Attribute("income", "numeric", reason="Income is low", monotone=-1, minimum=0),
        Attribute("purpose", "categorical", categories=("car", "debt", "home")),
        Attribute("joint", "binary"),
        Attribute("rate", "numeric", post_decision=True),
        Attribute("sub", "categorical"),
        Attribute("title", "text"),
        Attribute("loan_id", "identifier"),
        Attribute("gender", "categorical", protected=True),
    ]
    args: dict[str, object] = dict(name="t", target="y", classes=["good", "bad"],
                                   attributes=attrs, positive_class="bad", excluded=["sub"])
    args.update(kw)
    return Schema(**args)  # type: ignore[arg-type]


def good_frame() -> pd.DataFrame:
    return pd.DataFrame({
        "income": [50_000.0, 20_000.0, np.nan, 80_000.0],
        "purpose": ["car", "debt", np.nan, "home"],
        "joint": [0, 1, 0, 1],
        "rate": [5.0, 9.0, 7.0, 6.0],
        "y": ["good", "bad", "good", "good"],
    })


def test_feature_attributes_and_task() -> None:
    s = small_schema()
    assert s.task == "binary"
    assert [a.name for a in s.feature_attributes()] == ["income", "purpose", "joint"]
    assert [a.name for a in s.feature_attributes(allow_leaky=True)] == [
        "income", "purpose", "joint", "rate"]
    assert s.attribute("income").monotone == -1
    with pytest.raises(SchemaError, match="no attribute 'nope'"):
        s.attribute("nope")


def test_round_trip_save_load(tmp_path: Path) -> None:
    s = small_schema(description="about loans", primary_metric="accuracy")
    path = tmp_path / "s.schema.json"
    s.save(path)
    back = Schema.load(path)
    assert back == s
    assert back.attribute("purpose").categories == ("car", "debt", "home")
    assert json.loads(path.read_text())["format"] == "loanrisk-schema/1"


def test_positive_class_goes_last_and_defaults() -> None:
    s = small_schema(classes=["bad", "good"], positive_class="bad")
    assert s.classes == ["good", "bad"]
    assert small_schema(positive_class=None).positive_class == "bad"


def test_encode_target_and_unknown_label_names_rows() -> None:
    s = small_schema()
    assert s.encode_target(pd.Series(["good", "bad", "bad"])).tolist() == [0, 1, 1]
    assert s.encode_target(pd.Series(["good"])).dtype == np.int64
    with pytest.raises(DataError, match=r"row 3 \(line 4 of the file\) holds 'ugly'"):
        s.encode_target(pd.Series(["good", "bad", "ugly"]))


def test_validate_frame_accepts_good_and_names_problems() -> None:
    s = small_schema()
    s.validate_frame(good_frame())
    s.validate_frame(good_frame().drop(columns=["y", "rate"]), require_target=False)
    with pytest.raises(DataError, match="'rate'"):
        s.validate_frame(good_frame().drop(columns=["rate"]), allow_leaky=True)
    with pytest.raises(DataError, match="no target column 'y'"):
        s.validate_frame(good_frame().drop(columns=["y"]))

    bad = good_frame().astype({"income": object})
    bad.loc[2, "income"] = "lots"
    with pytest.raises(DataError) as e:
        s.validate_frame(bad)
    msg = str(e.value)
    assert "'income' must be numeric" in msg and "row 3 (line 4 of the file) holds 'lots'" in msg

    bad = good_frame()
    bad.loc[1, "purpose"] = "boat"
    bad.loc[0, "income"] = -5.0
    with pytest.raises(DataError) as e:
        s.validate_frame(bad)
    msg = str(e.value)  # both problems reported at once
    assert "'purpose'" in msg and "row 2" in msg and "'boat'" in msg
    assert "'income' must be at least 0" in msg and "row 1" in msg

    bad = good_frame()
    bad.loc[3, "y"] = "so-so"
    with pytest.raises(DataError, match=r"target 'y'.*row 4.*'so-so'"):
        s.validate_frame(bad)


@pytest.mark.parametrize(("doc", "needle"), [
    ({"target": "y", "attributes": [{"name": "a", "type": "float"}]},
     "attribute 'a'.*unknown type"),
    ({"target": "y", "attributes": [{"name": "a", "type": "numeric"},
                                    {"name": "a", "type": "numeric"}]}, "'a'.*more than once"),
    ({"target": "y", "classes": ["g", "b"], "positive_class": "x",
      "attributes": [{"name": "a", "type": "numeric"}]}, "positive_class 'x' is not one of"),
    ({"attributes": [{"name": "a", "type": "numeric"}]}, "no 'target'"),
    ({"target": "y", "attributes": [{"name": "a", "type": "numeric", "post_decison": True}]},
     "attribute 'a'.*unknown key.*post_decison"),
    ({"target": "y", "attributes": [{"name": "a", "type": "categorical", "monotone": 1}]},
     "attribute 'a'.*monotone"),
    ({"target": "y", "attributes": [{"name": "a"}]}, "attribute 'a'.*no 'type'"),
    ({"target": "y", "excluded": ["zz"], "attributes": [{"name": "a", "type": "numeric"}]},
     "excluded attribute 'zz'"),
    ({"target": "y", "attributes": [{"name": "y", "type": "categorical"}]},
     "target 'y' is also listed"),
    ({"target": "y", "primary_metric": "auc", "attributes": []}, "primary_metric 'auc'"),
    ({"target": "y", "attributes": [{"name": "t", "type": "categorical", "categories": ["a"],
                                     "labels": {"b": "Bee"}}]},
     r"attribute 't'.*labels for \['b'\], which are not among its categories"),
    ({"target": "y", "attributes": [{"name": "t", "type": "numeric", "labels": {"1": "one"}}]},
     "attribute 't'.*labels name the values of a categorical attribute; this one is numeric"),
    ({"target": "y", "attributes": [{"name": "t", "type": "categorical",
                                     "labels": ["a", "b"]}]},
     "attribute 't'.*labels must be an object"),
    ({"target": "y", "attributes": [{"name": "t", "type": "categorical", "labels": {"a": ""}}]},
     r"attribute 't'.*non-empty words.*\['a'\]"),
])
def test_schema_errors_name_file_and_attribute(tmp_path: Path, doc: dict, needle: str) -> None:
    path = tmp_path / "broken.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(SchemaError, match=needle) as e:
        Schema.load(path)
    assert str(path) in str(e.value)


def test_load_missing_and_invalid_json(tmp_path: Path) -> None:
    with pytest.raises(SchemaError, match="no such schema file"):
        Schema.load(tmp_path / "absent.json")
    (tmp_path / "x.json").write_text('{"target": "y",\n "attributes": [}')
    with pytest.raises(SchemaError, match="line 2"):
        Schema.load(tmp_path / "x.json")


AWS = {
    "version": "1.0",
    "rowId": "loan_id",
    "targetAttributeName": "defaulted",
    "dataFormat": "CSV",
    "dataFileContainsHeader": True,
    "attributes": [
        {"attributeName": "loan_id", "attributeType": "CATEGORICAL"},
        {"attributeName": "income", "attributeType": "NUMERIC"},
        {"attributeName": "purpose", "attributeType": "CATEGORICAL"},
        {"attributeName": "homeowner", "attributeType": "BINARY"},
        {"attributeName": "notes", "attributeType": "TEXT"},
        {"attributeName": "branch", "attributeType": "CATEGORICAL"},
        {"attributeName": "defaulted", "attributeType": "BINARY"},
    ],
    "excludedAttributeNames": ["branch"],
}


def test_aws_ml_import_and_classes(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "loans.aws.json"
    path.write_text(json.dumps(AWS))
    s = Schema.load(path)
    assert s.name == "loans" and s.target == "defaulted" and s.classes == []
    types = {a.name: a.type for a in s.attributes}
    assert types == {"loan_id": "identifier", "income": "numeric", "purpose": "categorical",
                     "homeowner": "binary", "notes": "text", "branch": "categorical"}
    assert s.excluded == ["branch"]
    assert [a.name for a in s.feature_attributes()] == ["income", "purpose", "homeowner"]
    with pytest.raises(SchemaError, match="no classes yet"):
        s.encode_target(pd.Series([0, 1]))

    with caplog.at_level(logging.WARNING, logger="loanrisk.schema"):
        filled = s.with_classes_from(pd.Series([0, 0, 1, 0, 1.0, 0]))
    assert filled.classes == ["0", "1"] and filled.positive_class == "1"
    assert "minority" in caplog.text and "minority" in filled.description
    assert filled.encode_target(pd.Series([1, 0, 1.0])).tolist() == [1, 0, 1]
    # when the adverse class is the majority, the schema can say so
    told = s.with_classes_from(pd.Series(["no", "yes", "yes"]))
    assert told.positive_class == "no"  # the minority guess
    told = Schema.from_aws_ml(AWS, source="x.json", classes=["ok", "late"])
    assert told.classes == ["ok", "late"] and told.positive_class == "late"


def test_aws_ml_errors_name_the_file_and_attribute() -> None:
    broken = {**AWS, "attributes": [*AWS["attributes"][:-1]]}
    with pytest.raises(SchemaError, match="f.json.*'defaulted'.*missing from the attributes"):
        Schema.from_dict(broken, source="f.json")
    odd = {**AWS, "attributes": [{"attributeName": "x", "attributeType": "DATE"},
                                 *AWS["attributes"]]}
    with pytest.raises(SchemaError, match="f.json.*attribute 'x'.*unknown attributeType 'DATE'"):
        Schema.from_dict(odd, source="f.json")
    with pytest.raises(SchemaError, match="excluded attribute 'nope'"):
        Schema.from_dict({**AWS, "excludedAttributeNames": ["nope"]}, source="f.json")


def test_infer_mixed_frame() -> None:
    n = 60
    rng = np.random.default_rng(0)
    df = pd.DataFrame({
        "loan_id": [f"L{i:04d}" for i in range(n)],
        "amount": rng.integers(1_000, 40_000, n).astype(float),
        "flag": rng.integers(0, 2, n),
        "home": rng.choice(["RENT", "OWN", "MORTGAGE"], n),
        "title": [f"job title {i}" for i in range(n)],
        "dti": rng.normal(18, 5, n),
        "grade": rng.choice(list("ABC"), n),
        "outcome": ["bad" if i % 5 == 0 else "good" for i in range(n)],
    })
    df.loc[[3, 7], "amount"] = np.nan
    df.loc[[1, 9], "home"] = np.nan
    s = Schema.infer(df, target="outcome", name="mine")
    types = {a.name: a.type for a in s.attributes}
    assert types == {"loan_id": "identifier", "amount": "numeric", "flag": "binary",
                     "home": "categorical", "title": "text", "dti": "numeric",
                     "grade": "categorical"}
    assert s.classes == ["good", "bad"] and s.positive_class == "bad"
    assert s.attribute("dti").reason == "Dti is unfavourable"
    assert s.attribute("amount").description == ""
    s.validate_frame(df)

    multi = Schema.infer(df, target="grade", name="g")
    assert multi.task == "multiclass" and multi.classes == ["A", "B", "C"]
    with pytest.raises(DataError, match="'nope' is not a column"):
        Schema.infer(df, target="nope", name="x")
    with pytest.raises(DataError, match="distinct values"):
        Schema.infer(df, target="dti", name="x")


def test_errors_are_loanrisk_errors() -> None:
    assert issubclass(SchemaError, LoanriskError) and issubclass(DataError, LoanriskError)
    with pytest.raises(SchemaError, match="attribute 'a': unknown type 'number'"):
        Attribute("a", "number")  # type: ignore[arg-type]


def test_category_labels_round_trip_and_fall_back_to_the_code() -> None:
    a = Attribute.from_dict({"name": "term", "type": "categorical",
                             "categories": ["term_36", "term_60"],
                             "labels": {"term_60": "60 months"}})
    assert a.label("term_60") == "60 months" and a.label("term_36") == "term_36"
    assert a.to_dict()["labels"] == {"term_60": "60 months"}
    again = Attribute.from_dict(a.to_dict())
    assert again == a and hash(again) == hash(a)
    assert "labels" not in Attribute.from_dict({"name": "x", "type": "categorical"}).to_dict()



def test_category_labels_are_in_the_request_schema() -> None:
    """The OpenAPI description of a labelled attribute says what each code means."""
    from loanrisk.scoring.validation import build_request_model

    manifest = {"name": "m", "features": ["term"], "inputs": {"term": "string"}}
    schema = {"attributes": [{"name": "term", "type": "categorical", "description": "Loan term.",
                              "categories": ["term_36", "term_60"],
                              "labels": {"term_36": "36 months", "term_60": "60 months"}}]}
    prop = build_request_model(manifest, schema).model_json_schema()["properties"]["term"]
    assert prop["enum"] == ["term_36", "term_60"]
    assert prop["description"] == "Loan term. Codes: term_36 = 36 months; term_60 = 60 months."
