"""Real public templates (tests/corpus): deployed, judged healthy, broken the ways IaC breaks them, healed.

Each template (SAM examples, serverless-patterns, CDK integration snapshots; SOURCES.md) is
transformed with aws-sam-translator when it is SAM, deployed into moto through the deployer
(tests/corpus/deployer.py), and then:
- unbroken, every route and authorizer of every stage answers successfully in the API Gateway
  simulator (judged by the independent oracle) and `permheal scan` finds no missing permission;
- broken (manifest.BREAKS), the simulator sees failures, `permheal scan` reports a missing
  permission for each failing call and each of its findings is a call the oracle denies;
  `permheal remediate --local` then makes every call succeed, loses no statement that is not this
  API's grant (nor any call this API's grants allowed) and adds only grants scoped to this API id
  on a function some stage invokes.
"""

from __future__ import annotations

import copy
import functools
import re
from typing import Any

import pytest

from permheal_local.builder import ACCOUNT, World
from permheal_local.oracle import allows
from tests.corpus import breaks, judge, manifest, sam
from tests.corpus.deployer import Deployed, deploy

CASES = [pytest.param(t, b, id=f"{t.file}-{b}") for t in manifest.CORPUS for b in t.breaks]


@functools.cache
def _transformed(file: str) -> dict[str, Any]:
    template = sam.load(manifest.TEMPLATES / file)
    if sam.is_sam(template):
        try:
            import samtranslator  # noqa: F401
        except ModuleNotFoundError:  # pragma: no cover - a missing dev dependency must be loud, not skipped
            pytest.fail("aws-sam-translator is needed for the SAM templates of the corpus (dev dependency)")
    return sam.to_cloudformation(template)


def deployed_template(world: World, entry: manifest.Template) -> tuple[Deployed, list[str]]:
    """Deploy, allowlist everything; the deployment and the ids of the APIs that serve a stage."""
    deployed = deploy(copy.deepcopy(_transformed(entry.file)), world)
    world.allow("*")
    apigw = world.client("apigateway")
    served = [api for api in deployed.apis.values() if apigw.get_stages(restApiId=api)["item"]]
    return deployed, served


def missing(cli: Any, api_ids: list[str]) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for api_id in api_ids:
        run = cli("scan", "--api", api_id, "--format", "json")
        assert run.code in (0, 1), run.out
        found += [f for f in run.json["findings"] if f["kind"] == "missing_permission"]
    return found


def test_the_corpus_has_eight_real_templates_with_sources_and_every_break_is_exercised() -> None:
    files = sorted(p.name for p in manifest.TEMPLATES.iterdir())
    assert files == sorted(t.file for t in manifest.CORPUS)
    assert len(files) >= 8
    sources = (manifest.TEMPLATES.parent / "SOURCES.md").read_text()
    assert all(f"`{name}`" in sources for name in files)
    for name in manifest.BREAKS:
        assert any(name in t.breaks for t in manifest.CORPUS), name


@pytest.mark.parametrize("entry", manifest.CORPUS, ids=lambda t: t.file)
def test_template_deploys_healthy_and_permheal_agrees(
    world: World, cli: Any, entry: manifest.Template
) -> None:
    # Given the template deployed as CloudFormation would
    deployed, served = deployed_template(world, entry)

    # Then the deployer said exactly what it could not honour, and something serves requests
    assert tuple(deployed.notes) == entry.notes
    assert served
    assert judge.calls(world, served[0])
    # And every route and authorizer of every stage works (simulator + oracle) ...
    assert judge.failures(world, served) == []
    # ... and permheal's scan agrees: nothing is missing
    assert missing(cli, served) == []
    # And every AWS::Lambda::Permission landed, through the faithful Lambda, on its exact qualifier
    held = judge.policies(world)
    for grant in deployed.grants:
        assert grant.sid in {s["Sid"] for s in held[(grant.function, grant.qualifier)]}, grant
    # And the breaks the manifest rules out really do not apply
    qualified = [g for g in breaks.api_grants(deployed, served) if g.qualifier is not None]
    assert (manifest.UNQUALIFIED in entry.breaks) == bool(qualified)


@pytest.mark.parametrize(("entry", "name"), CASES)
def test_broken_template_is_healed_exactly(
    world: World, cli: Any, entry: manifest.Template, name: str
) -> None:
    # Given a healthy deployment, broken the way IaC breaks it
    deployed, served = deployed_template(world, entry)
    healthy = judge.policies(world)
    assert breaks.apply(name, world, deployed, served) > 0
    broken = judge.policies(world)
    failing = judge.failures(world, served)

    if name == manifest.CONSOLE_DUPLICATES:
        # Duplicates break nothing: both judges agree
        assert failing == []
        assert missing(cli, served) == []
    else:
        # Then the simulator sees failures and permheal's scan agrees with the oracle, both ways
        assert failing
        findings = missing(cli, served)
        for finding in findings:
            function = (str(finding["functionArn"]).split(":")[6], finding["qualifier"])
            assert not allows(
                broken.get(function, []), judge.function_arn(function), finding["sourceArn"], ACCOUNT
            ), finding
        reported = {(f["apiId"], f["stage"]) for f in findings}
        for failure in failing:
            api_stage = failure.split(" ", 1)[0]
            assert tuple(api_stage.split("/", 1)) in reported, (failure, findings)

    # When each API that serves a stage is remediated
    for api_id in served:
        run = cli("remediate", "--api", api_id, "--local", "--format", "json")
        assert run.code == 0, run.out
        assert run.json["outcome"] in ("repaired", "no_change"), run.out

    # Then every call works, nothing else was lost, and every added grant is scoped to this API
    after = judge.policies(world)
    targets = set().union(*(judge.invoked_targets(world, api_id) for api_id in served))
    assert judge.failures(world, served) == []
    assert judge.lost(broken, after, served) == []
    assert judge.too_wide(broken, after, served, targets) == []
    assert judge.drifted(broken, after, [g.sid for g in deployed.grants]) == []
    assert missing(cli, served) == []
    if name == manifest.CONSOLE_DUPLICATES:
        # And the console's copies (not stack-owned) are gone again: exact duplicates are removed
        assert after == healthy


# --- the judge itself can fail ------------------------------------------------------------------------

API = "a1b2c3d4e5"
FN: judge.FunctionId = ("orders", None)


def gateway_grant(sid: str, source: str) -> dict[str, Any]:
    return {
        "Sid": sid,
        "Effect": "Allow",
        "Principal": {"Service": judge.GATEWAY},
        "Action": "lambda:InvokeFunction",
        "Resource": judge.function_arn(FN),
        "Condition": {"ArnLike": {"AWS:SourceArn": judge.api_prefix(API) + source}},
    }


EVENTS_GRANT = {
    "Sid": "events",
    "Effect": "Allow",
    "Principal": {"Service": "events.amazonaws.com"},
    "Action": "lambda:InvokeFunction",
    "Resource": judge.function_arn(FN),
}


def test_lost_flags_another_principals_statement_and_a_call_no_longer_allowed() -> None:
    wide, narrow = gateway_grant("wide", "*/GET/*"), gateway_grant("narrow", "*/GET/pets")
    before = {FN: [EVENTS_GRANT, wide, narrow]}
    # Dropping the covered grant loses nothing; dropping the covering one or the events grant does
    assert judge.lost(before, {FN: [EVENTS_GRANT, wide]}, [API]) == []
    assert len(judge.lost(before, {FN: [EVENTS_GRANT, narrow]}, [API])) == 1
    assert len(judge.lost(before, {FN: [wide, narrow]}, [API])) == 1


def test_too_wide_flags_grants_beyond_the_api_and_on_functions_no_stage_invokes() -> None:
    before: judge.Policies = {FN: []}
    scoped = {FN: [gateway_grant("permheal-1", "*/GET/pets")]}
    assert judge.too_wide(before, scoped, [API], {FN}) == []
    assert len(judge.too_wide(before, scoped, [API], {("other", None)})) == 1
    every_api = dict(
        gateway_grant("permheal-2", ""), Condition={"ArnLike": {"AWS:SourceArn": "arn:aws:execute-api:*"}}
    )
    assert len(judge.too_wide(before, {FN: [every_api]}, [API], {FN})) == 1
    assert len(judge.too_wide(before, {FN: [EVENTS_GRANT]}, [API], {FN})) == 1


def test_drifted_flags_a_removed_stack_owned_statement_only() -> None:
    owned, console = (
        gateway_grant("corpus-Perm-ABCDEF123456", "*/GET/pets"),
        gateway_grant("c0ffee", "*/GET/pets"),
    )
    before = {FN: [owned, console]}
    assert judge.drifted(before, {FN: [owned]}, [owned["Sid"]]) == []
    assert len(judge.drifted(before, {FN: [console]}, [owned["Sid"]])) == 1


def test_deployer_names_grants_as_cloudformation_does(world: World) -> None:
    # CloudFormation's Sid for an AWS::Lambda::Permission: `{stack}-{LogicalId}-{12-13 letters/digits}`
    deployed, _ = deployed_template(world, manifest.CORPUS[0])
    assert deployed.grants
    for grant in deployed.grants:
        assert re.fullmatch(rf"corpus-{grant.logical_id[:40]}.*-[A-Z0-9]{{12}}", grant.sid), grant.sid
        assert len(grant.sid) <= 100
