"""Build API Gateway + Lambda setups through real boto3 calls: the demo's petstore and the tests' fixtures."""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass, field
from typing import Any

import boto3

from permheal.arns import ApiRef

ACCOUNT = "123456789012"
REGION = "us-east-1"
_HANDLER_SOURCE = "def handler(event, context):\n    return {'statusCode': 200, 'body': 'ok'}\n"


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("index.py", _HANDLER_SOURCE)
    return buffer.getvalue()


def integration_uri(function_text: str, region: str = REGION) -> str:
    """The URI API Gateway stores for a Lambda integration or authorizer."""
    return f"arn:aws:apigateway:{region}:lambda:path/2015-03-31/functions/{function_text}/invocations"


def function_arn(
    name: str, qualifier: str | None = None, account: str = ACCOUNT, region: str = REGION
) -> str:
    arn = f"arn:aws:lambda:{region}:{account}:function:{name}"
    return f"{arn}:{qualifier}" if qualifier else arn


def execute_api(api_id: str, rest: str, *, region: str = REGION, account: str = ACCOUNT) -> str:
    """`arn:aws:execute-api:REGION:ACCOUNT:API_ID/REST`, e.g. rest = `prod/GET/pets` or `*/*`."""
    return f"{ApiRef('aws', region, account, api_id).prefix}/{rest}"


@dataclass
class World:
    """A small façade over the boto3 calls that set up APIs, functions and grants."""

    region: str = REGION
    clients: dict[str, Any] = field(default_factory=dict)
    _role: str | None = None
    _resources: dict[tuple[str, str], str] = field(default_factory=dict)

    def client(self, service: str) -> Any:
        if service not in self.clients:
            self.clients[service] = boto3.client(service, region_name=self.region)  # type: ignore[call-overload]
        return self.clients[service]

    def function(self, name: str, *, alias: str | None = None, versions: int = 0) -> str:
        """Create a function, publish `versions` versions and point `alias` at the latest one."""
        lam = self.client("lambda")
        self.create_function(name)
        version = "$LATEST"
        for _ in range(max(versions, 1 if alias else 0)):
            version = lam.publish_version(FunctionName=name)["Version"]
        if alias:
            lam.create_alias(FunctionName=name, Name=alias, FunctionVersion=version)
        return function_arn(name, region=self.region)

    def create_function(
        self,
        name: str,
        handler: str = "index.handler",
        environment: dict[str, str] | None = None,
        timeout: int = 60,
        memory: int = 256,
    ) -> str:
        return str(
            self.client("lambda").create_function(
                FunctionName=name,
                Runtime="python3.12",
                Role=self.execution_role(),
                Handler=handler,
                Code={"ZipFile": _zip()},
                Environment={"Variables": environment or {}},
                Timeout=timeout,
                MemorySize=memory,
            )["FunctionArn"]
        )

    def execution_role(self) -> str:
        if self._role is None:
            self._role = self.client("iam").create_role(
                RoleName="permheal-fixture-role",
                AssumeRolePolicyDocument='{"Version":"2012-10-17","Statement":[]}',
            )["Role"]["Arn"]
        return self._role

    def rest_api(self, name: str) -> str:
        api_id: str = self.client("apigateway").create_rest_api(name=name)["id"]
        return api_id

    def resource(self, api_id: str, path: str) -> str:
        """The id of `path`, creating it and its parents as needed."""
        if (api_id, "/") not in self._resources:
            for item in self.client("apigateway").get_resources(restApiId=api_id)["items"]:
                self._resources[(api_id, item["path"])] = item["id"]
        if (api_id, path) in self._resources:
            return self._resources[(api_id, path)]
        parent_path, _, part = path.rstrip("/").rpartition("/")
        parent = self.resource(api_id, parent_path or "/")
        created = self.client("apigateway").create_resource(restApiId=api_id, parentId=parent, pathPart=part)
        self._resources[(api_id, path)] = created["id"]
        resource_id: str = created["id"]
        return resource_id

    def method(
        self,
        api_id: str,
        path: str,
        http_method: str,
        function_text: str | None,
        *,
        authorizer_id: str | None = None,
        credentials: str | None = None,
        integration_type: str = "AWS_PROXY",
    ) -> None:
        """A method whose integration invokes `function_text` (name, ARN, or with stage variables)."""
        apigw = self.client("apigateway")
        resource_id = self.resource(api_id, path)
        apigw.put_method(
            restApiId=api_id,
            resourceId=resource_id,
            httpMethod=http_method,
            authorizationType="CUSTOM" if authorizer_id else "NONE",
            **({"authorizerId": authorizer_id} if authorizer_id else {}),
        )
        if function_text is None:
            apigw.put_integration(
                restApiId=api_id, resourceId=resource_id, httpMethod=http_method, type="MOCK"
            )
            return
        apigw.put_integration(
            restApiId=api_id,
            resourceId=resource_id,
            httpMethod=http_method,
            type=integration_type,
            integrationHttpMethod="POST",
            uri=integration_uri(function_text, self.region),
            **({"credentials": credentials} if credentials else {}),
        )

    def authorizer(
        self,
        api_id: str,
        name: str,
        function_text: str,
        *,
        kind: str = "TOKEN",
        credentials: str | None = None,
    ) -> str:
        authorizer: dict[str, Any] = self.client("apigateway").create_authorizer(
            restApiId=api_id,
            name=name,
            type=kind,
            authorizerUri=integration_uri(function_text, self.region),
            identitySource="method.request.header.Authorization",
            **({"authorizerCredentials": credentials} if credentials else {}),
        )
        return str(authorizer["id"])

    def deploy(
        self,
        api_id: str,
        stage: str,
        variables: dict[str, str] | None = None,
        logging_level: str | None = "INFO",
    ) -> None:
        """Deploy what is defined now: the stage serves this snapshot until the next deployment."""
        apigw = self.client("apigateway")
        apigw.create_deployment(restApiId=api_id, stageName=stage, variables=variables or {})
        if logging_level:
            apigw.update_stage(
                restApiId=api_id,
                stageName=stage,
                patchOperations=[{"op": "replace", "path": "/*/*/logging/loglevel", "value": logging_level}],
            )

    def deploy_canary(
        self, api_id: str, stage: str, overrides: dict[str, str] | None = None, percent: float = 10.0
    ) -> str:
        """Deploy the API as `stage`'s canary (the stage keeps serving its own deployment)."""
        deployment: str = self.client("apigateway").create_deployment(
            restApiId=api_id,
            stageName=stage,
            canarySettings={"percentTraffic": percent, "stageVariableOverrides": overrides or {}},
        )["id"]
        return deployment

    def allow(self, *entries: str, name: str = "/permheal/allowed-apis") -> None:
        """Write the allowlist parameter (StringList)."""
        self.client("ssm").put_parameter(
            Name=name, Type="StringList", Value=",".join(entries) or " ", Overwrite=True
        )

    def grant(self, function: str, source_arn: str, *, sid: str, qualifier: str | None = None) -> None:
        """A console-style AddPermission for API Gateway."""
        self.client("lambda").add_permission(
            FunctionName=function,
            StatementId=sid,
            Action="lambda:InvokeFunction",
            Principal="apigateway.amazonaws.com",
            SourceArn=source_arn,
            **({"Qualifier": qualifier} if qualifier else {}),
        )

    def statements(self, function: str, qualifier: str | None = None) -> list[dict[str, Any]]:
        """The qualifier's statements as GetPolicy returns them ([] when there is no policy)."""
        import json

        try:
            response = self.client("lambda").get_policy(
                FunctionName=function, **({"Qualifier": qualifier} if qualifier else {})
            )
        except self.client("lambda").exceptions.ResourceNotFoundException:
            return []
        statements: list[dict[str, Any]] = json.loads(response["Policy"])["Statement"]
        return statements
