"""The real-template corpus: each file under templates/, where it comes from, and how it is exercised.

Sources, commits and licenses: SOURCES.md. `notes` are what the deployer cannot honour for the
template (said, never dropped silently); `breaks` are the ways IaC breaks it that apply, and
`not_applicable` says why any other break does not (checked against the deployed grants).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

TEMPLATES = Path(__file__).resolve().parent / "templates"

DROP = "drop"
"""Every API Gateway AWS::Lambda::Permission of the template removed (a refactor lost them)."""
OTHER_STAGE = "other_stage"
"""Each grant re-scoped to another stage (or, for an authorizer, another authorizer id)."""
OLD_API_ID = "old_api_id"
"""Each grant still names the API id the API had before it was re-created."""
UNQUALIFIED = "unqualified"
"""The grant sits on the unqualified function while the integration invokes an alias."""
CONSOLE_DUPLICATES = "console_duplicates"
"""Two more copies of each grant under other Sids, as repeated console saves leave them."""
BREAKS = (DROP, OTHER_STAGE, OLD_API_ID, UNQUALIFIED, CONSOLE_DUPLICATES)
NO_ALIAS = "no integration or authorizer invokes an alias or version"


@dataclass(frozen=True)
class Template:
    file: str
    features: str
    notes: tuple[str, ...] = ()
    not_applicable: dict[str, str] = field(default_factory=dict)

    @property
    def path(self) -> Path:
        return TEMPLATES / self.file

    @property
    def breaks(self) -> tuple[str, ...]:
        return tuple(b for b in BREAKS if b not in self.not_applicable)


CORPUS = (
    Template(
        "sam-implicit-api.yaml",
        "SAM implicit API: four Api events, {proxy+} with ANY, two functions",
        not_applicable={UNQUALIFIED: NO_ALIAS},
    ),
    Template(
        "sam-api-with-auth-all-minimum.yaml",
        "SAM: four APIs, Cognito, Lambda TOKEN and REQUEST authorizers, ANY methods",
        not_applicable={UNQUALIFIED: NO_ALIAS},
    ),
    Template(
        "sam-function-with-alias-and-event-sources.yaml",
        "SAM AutoPublishAlias: the API invokes the alias; events, SNS, S3, IoT, logs grants beside",
        notes=(
            "GetHtmlApi: BodyS3Location is not in the source repository; no routes",
            "GetHtmlApiDeploymentf117c932f7: not deployed, its API has no routes",
            "GetHtmlApiStage: not deployed, its API has no routes",
        ),
    ),
    Template(
        "patterns-apigw-rest-api-lambda-python.yaml",
        "serverless-patterns: SAM hello world REST API",
        not_applicable={UNQUALIFIED: NO_ALIAS},
    ),
    Template(
        "patterns-apigw-lambda-authorizer.yaml",
        "serverless-patterns: AWS::ApiGateway::* resources, a Lambda TOKEN authorizer, hand-written grants",
        not_applicable={UNQUALIFIED: NO_ALIAS},
    ),
    Template(
        "patterns-apigw-lambda-authorizer-custom-header.yaml",
        "serverless-patterns: SAM API with a DefinitionBody (HTTP integration) behind a Lambda authorizer",
        not_applicable={UNQUALIFIED: NO_ALIAS},
    ),
    Template(
        "cdk-token-authorizer.template.json",
        "CDK snapshot: TOKEN authorizer in front of a MOCK integration, authorizer URI built with Fn::Split",
        not_applicable={UNQUALIFIED: NO_ALIAS},
    ),
    Template(
        "cdk-restapi-books.template.json",
        "CDK snapshot: /books/{book_id}, AWS_IAM methods, stage-scoped and test-invoke-stage grants",
        not_applicable={UNQUALIFIED: NO_ALIAS},
    ),
    Template(
        "cdk-lambda-permission-consolidation.template.json",
        "CDK snapshot: six methods, one consolidated api-wide grant ({api}/*/*/*)",
        not_applicable={UNQUALIFIED: NO_ALIAS},
    ),
)
