"""Reading templates for `permheal check`: CloudFormation tags, resource lines, includes, intrinsics."""

from __future__ import annotations

from pathlib import Path

import pytest

from permheal.check import intrinsics as ix
from permheal.check.loader import include_local, load
from permheal.errors import ParseError

YAML = """\
AWSTemplateFormatVersion: '2010-09-09'
Parameters:
  Stage:
    Type: String
    Default: prod
  Secret:
    Type: String
Conditions:
  IsProd: !Equals [!Ref Stage, prod]
  HasSecret: !Equals [!Ref Secret, x]
Resources:
  Fn:
    Type: AWS::Lambda::Function
    Properties:
      FunctionName: !Sub "${Stage}-pets"
  Api:
    Type: AWS::ApiGateway::RestApi
  Alias:
    Type: AWS::Lambda::Alias
    Properties:
      FunctionName: !Ref Fn
      Name: live
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_short_form_tags_become_long_form_and_lines_are_kept(tmp_path: Path) -> None:
    doc = load(write(tmp_path, "t.yaml", YAML))
    assert doc.data["Resources"]["Fn"]["Properties"]["FunctionName"] == {"Fn::Sub": "${Stage}-pets"}
    assert doc.data["Conditions"]["IsProd"] == {"Fn::Equals": [{"Ref": "Stage"}, "prod"]}
    assert doc.data["AWSTemplateFormatVersion"] == "2010-09-09"  # a string, not a date
    assert (doc.lines["Fn"], doc.lines["Api"], doc.lines["Alias"]) == (12, 16, 18)


def test_json_lines_point_at_each_resource_key(tmp_path: Path) -> None:
    text = '{\n "Resources": {\n  "A": {"Type": "X"},\n  "B": {\n   "Type": "Y"\n  }\n }\n}\n'
    doc = load(write(tmp_path, "t.json", text))
    assert doc.is_json and (doc.lines["A"], doc.lines["B"]) == (3, 4)


def test_a_generated_resource_maps_to_the_resource_whose_id_prefixes_it(tmp_path: Path) -> None:
    doc = load(write(tmp_path, "t.yaml", YAML))
    assert doc.line_of("FnAliaslive") == doc.lines["Fn"]
    assert doc.line_of("Unrelated") == doc.lines[""]


def test_garbage_is_a_parse_error_naming_the_file(tmp_path: Path) -> None:
    with pytest.raises(ParseError, match=r"t\.yaml"):
        load(write(tmp_path, "t.yaml", "a: [unclosed"))


def test_aws_include_of_a_local_file_is_inlined_and_s3_is_left(tmp_path: Path) -> None:
    write(tmp_path, "api.yaml", "openapi: 3.0.1\npaths: {}\n")
    value = {"Fn::Transform": {"Name": "AWS::Include", "Parameters": {"Location": "./api.yaml"}}}
    assert include_local(value, tmp_path) == {"openapi": "3.0.1", "paths": {}}
    s3 = {"Fn::Transform": {"Name": "AWS::Include", "Parameters": {"Location": "s3://b/api.yaml"}}}
    assert include_local(s3, tmp_path) == s3
    with pytest.raises(ParseError, match="not found"):
        gone = {"Fn::Transform": {"Name": "AWS::Include", "Parameters": {"Location": "gone.yaml"}}}
        include_local(gone, tmp_path)


def resolver(tmp_path: Path) -> ix.Resolver:
    return ix.Resolver(load(write(tmp_path, "t.yaml", YAML)).data)


def test_references_resolve_to_stable_stand_ins_shaped_like_physical_ids(tmp_path: Path) -> None:
    r = resolver(tmp_path)
    assert r.ref("Fn") == "prod-pets"
    assert r.get_att("Fn", "Arn") == "arn:aws:lambda:us-east-1:123456789012:function:prod-pets"
    assert r.ref("Alias") == "arn:aws:lambda:us-east-1:123456789012:function:prod-pets:live"
    api_id = r.ref("Api")
    assert len(api_id) == 10 and api_id == ix.Resolver({"Resources": {"Api": {"Type": "X"}}}).api_id("Api")


def test_sub_join_select_split_and_conditions(tmp_path: Path) -> None:
    r = resolver(tmp_path)
    text = r.value({"Fn::Sub": "${AWS::Region}/${!Literal}/${Fn.Arn}"})
    assert text.startswith("us-east-1/${Literal}/arn:")
    assert r.value({"Fn::Sub": ["${X}-${Stage}", {"X": {"Ref": "AWS::AccountId"}}]}) == "123456789012-prod"
    assert r.value({"Fn::Join": ["-", ["a", {"Ref": "Stage"}]]}) == "a-prod"
    assert r.value({"Fn::Select": [1, {"Fn::Split": [":", "a:b:c"]}]}) == "b"
    assert r.value({"Fn::If": ["IsProd", "yes", "no"]}) == "yes"
    assert r.value({"Fn::If": ["HasSecret", "yes", "yes"]}) == "yes"  # both branches agree


def test_what_only_deploy_knows_is_an_unknown_marker(tmp_path: Path) -> None:
    r = resolver(tmp_path)
    assert ix.is_unknown(r.ref("Secret"))
    assert ix.is_unknown(r.value({"Fn::ImportValue": "other-stack-fn"}))
    assert ix.is_unknown(r.value({"Fn::If": ["HasSecret", "a", "b"]}))
    assert not ix.is_unknown(r.ref("Stage"))


def test_every_short_form_tag_reads_including_rules_and_language_extensions(tmp_path: Path) -> None:
    # Given tags outside the intrinsic functions (Rules' !Contains, !ForEach of the extensions)
    text = "Rules:\n  R:\n    Assertions:\n      - Assert: !Contains [[a], !Ref P]\n"
    text += "Resources:\n  X: !ForEach [a]\n"
    doc = load(write(tmp_path, "t.yaml", text))
    assert doc.data["Rules"]["R"]["Assertions"][0]["Assert"] == {"Fn::Contains": [["a"], {"Ref": "P"}]}
    assert doc.data["Resources"]["X"] == {"Fn::ForEach": ["a"]}


def test_for_each_loops_expand_with_the_item_in_keys_strings_and_refs() -> None:
    from permheal.check.extensions import expand

    template = {
        "Transform": ["AWS::LanguageExtensions", "AWS::Serverless-2016-10-31"],
        "Parameters": {
            "Names": {"Type": "CommaDelimitedList", "Default": "a-1,b"},
            "Later": {"Type": "String"},
        },
        "Resources": {
            "Fn::ForEach::Loop": [
                "N",
                {"Ref": "Names"},
                {"Grant&{N}": {"Type": "T", "Properties": {"Name": {"Ref": "N"}, "Text": "x-${N}"}}},
            ],
            "Fn::ForEach::Unknown": ["M", {"Ref": "Later"}, {"Y&{M}": {"Type": "T"}}],
        },
    }
    expanded, unexpanded = expand(template)
    assert expanded["Transform"] == "AWS::Serverless-2016-10-31"
    assert expanded["Resources"] == {
        "Granta1": {"Type": "T", "Properties": {"Name": "a-1", "Text": "x-a-1"}},
        "Grantb": {"Type": "T", "Properties": {"Name": "b", "Text": "x-b"}},
    }
    assert unexpanded == ["Fn::ForEach::Unknown"]


def test_a_loop_over_a_deploy_time_list_that_makes_grants_is_unresolved(tmp_path: Path) -> None:
    from permheal.check import CheckKind, check_paths

    text = (
        "Transform: AWS::LanguageExtensions\nParameters:\n  Later:\n    Type: CommaDelimitedList\n"
        "Resources:\n  Fn::ForEach::Grants:\n    - N\n    - !Ref Later\n"
        "    - Grant&{N}:\n        Type: AWS::Lambda::Permission\n        Properties: {}\n"
    )
    (finding,) = check_paths([write(tmp_path, "t.yaml", text)])
    assert (finding.kind, finding.line) == (
        CheckKind.UNRESOLVED,
        6,
    ) and "Fn::ForEach::Grants" in finding.detail
