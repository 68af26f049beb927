"""Deploy a (transformed) CloudFormation template into the local AWS through ordinary boto3 calls.

moto's own `create_stack` cannot do it: its API Gateway import rejects Swagger 2.0 (what SAM
writes), ignores authorizers and method authorization, and its Lambda::Permission bypasses the
faithful Lambda double. This deployer does what CloudFormation does for the resource types the
corpus uses, in dependency order (Ref, GetAtt, Sub, DependsOn), so Deployments are taken after
their methods exist and every grant lands through `AddPermission`:

- API Gateway: RestApi (with `Body` imported as API Gateway imports OpenAPI/Swagger, authorizers
  and method security included), Resource, Method, Authorizer, Deployment (its `StageName` creates
  that stage, as CloudFormation does), Stage;
- Lambda: Function (placeholder code: nothing is ever invoked), Version, Alias, Permission (Sid
  `{stack}-{logical id}-{suffix}`, CloudFormation's physical-id pattern).

Every other type (IAM roles, Cognito pools, SNS, S3, events, API Gateway Account...) is not
created: it gets a placeholder physical id and ARN and is listed in `Deployed.skipped`, and
anything the deployer cannot honour (e.g. a `BodyS3Location` whose object is not in the source
repository) is listed in `Deployed.notes` — the corpus manifest names each, nothing is dropped
silently.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from permheal_local.builder import ACCOUNT, REGION, World

DEPLOYED_TYPES = frozenset(
    {
        "AWS::ApiGateway::RestApi",
        "AWS::ApiGateway::Resource",
        "AWS::ApiGateway::Method",
        "AWS::ApiGateway::Authorizer",
        "AWS::ApiGateway::Deployment",
        "AWS::ApiGateway::Stage",
        "AWS::Lambda::Function",
        "AWS::Lambda::Version",
        "AWS::Lambda::Alias",
        "AWS::Lambda::Permission",
    }
)
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "x-amazon-apigateway-any-method")
_SUB = re.compile(r"\$\{([^}!][^}]*)\}")


class DeployError(RuntimeError):
    """The template uses something this deployer does not model (said, never guessed)."""


@dataclass(frozen=True)
class Grant:
    """One Lambda::Permission as deployed: the function (name), its qualifier and the Sid."""

    logical_id: str
    function: str
    qualifier: str | None
    sid: str
    principal: str
    source_arn: str | None


@dataclass
class Deployed:
    stack: str
    refs: dict[str, str] = field(default_factory=dict)
    attributes: dict[tuple[str, str], str] = field(default_factory=dict)
    apis: dict[str, str] = field(default_factory=dict)
    """logical id -> REST API id."""
    functions: dict[str, str] = field(default_factory=dict)
    """logical id -> function name."""
    aliases: dict[str, tuple[str, str]] = field(default_factory=dict)
    """logical id -> (function name, alias name)."""
    grants: list[Grant] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    """logical id -> type, for resources not created (placeholders only)."""
    notes: list[str] = field(default_factory=list)


def deploy(template: Mapping[str, Any], world: World, stack: str = "corpus") -> Deployed:
    return _Deployer(template, world, stack).run()


class _Deployer:
    def __init__(self, template: Mapping[str, Any], world: World, stack: str):
        self.template = template
        self.world = world
        self.resources: dict[str, Any] = dict(template.get("Resources") or {})
        self.out = Deployed(stack)
        self.parameters = {
            name: str(spec.get("Default", f"{name.lower()}-param"))
            for name, spec in (template.get("Parameters") or {}).items()
        }
        self.pseudo = {
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT,
            "AWS::Partition": "aws",
            "AWS::StackName": stack,
            "AWS::StackId": f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{stack}/corpus",
            "AWS::URLSuffix": "amazonaws.com",
            "AWS::NoValue": "",
        }
        self.conditions: dict[str, bool] = {}
        self.without_body: set[str] = set()
        """APIs whose definition is in S3 (not in the source repository): nothing to deploy."""

    # -- orchestration -------------------------------------------------------------------------------

    def run(self) -> Deployed:
        for name in self.template.get("Conditions") or {}:
            self.condition(name)
        for logical_id in self.order():
            spec = self.resources[logical_id]
            if "Condition" in spec and not self.condition(spec["Condition"]):
                self.out.notes.append(f"{logical_id}: condition {spec['Condition']} is false, not created")
                continue
            kind = spec["Type"]
            if kind not in DEPLOYED_TYPES:
                self.placeholder(logical_id, kind)
                continue
            properties = self.resolve(spec.get("Properties") or {})
            getattr(self, "_" + kind.split("::", 1)[1].replace("::", "_").lower())(logical_id, properties)
        return self.out

    def order(self) -> list[str]:
        """Resources in an order where each comes after everything it refers to."""
        done: list[str] = []
        seen: set[str] = set()

        def visit(logical_id: str, path: tuple[str, ...]) -> None:
            if logical_id in seen:
                return
            if logical_id in path:
                raise DeployError(f"circular dependency: {' -> '.join((*path, logical_id))}")
            spec = self.resources[logical_id]
            depends = spec.get("DependsOn") or []
            for other in sorted(set(_references(spec.get("Properties"))) | set(_listed(depends))):
                if other in self.resources:
                    visit(other, (*path, logical_id))
            seen.add(logical_id)
            done.append(logical_id)

        for logical_id in self.resources:
            visit(logical_id, ())
        return done

    def placeholder(self, logical_id: str, kind: str) -> None:
        service = kind.split("::")[1].lower()
        self.out.skipped[logical_id] = kind
        self.out.refs[logical_id] = f"{logical_id.lower()}-placeholder"
        self.out.attributes[(logical_id, "Arn")] = f"arn:aws:{service}:{REGION}:{ACCOUNT}:{logical_id}"

    # -- intrinsic functions ------------------------------------------------------------------------

    def condition(self, name: str) -> bool:
        if name not in self.conditions:
            self.conditions[name] = bool(self.resolve((self.template.get("Conditions") or {})[name]))
        return self.conditions[name]

    def ref(self, name: str) -> str:
        if name in self.pseudo:
            return self.pseudo[name]
        if name in self.parameters:
            return self.parameters[name]
        if name in self.out.refs:
            return self.out.refs[name]
        raise DeployError(f"Ref to {name!r} before it exists (or unknown)")

    def get_att(self, logical_id: str, attribute: str) -> str:
        key = (logical_id, attribute)
        if key in self.out.attributes:
            return self.out.attributes[key]
        if logical_id in self.out.skipped:
            return f"{logical_id.lower()}-{attribute.lower()}-placeholder"
        raise DeployError(f"GetAtt {logical_id}.{attribute} is not modelled")

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(v) for v in value if not _is_no_value(v)]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            if key == "Ref":
                return self.ref(arg)
            if key == "Fn::GetAtt":
                logical_id, attribute = arg if isinstance(arg, list) else arg.split(".", 1)
                return self.get_att(logical_id, attribute)
            if key == "Fn::Join":
                return str(arg[0]).join(str(self.resolve(v)) for v in arg[1] if not _is_no_value(v))
            if key == "Fn::Sub":
                text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1]))
                return self.sub(text, variables)
            if key == "Fn::Select":
                return self.resolve(arg[1])[int(self.resolve(arg[0]))]
            if key == "Fn::Split":
                return str(self.resolve(arg[1])).split(arg[0])
            if key == "Fn::If":
                return self.resolve(arg[1] if self.condition(arg[0]) else arg[2])
            if key == "Fn::Equals":
                return self.resolve(arg[0]) == self.resolve(arg[1])
            if key == "Fn::Not":
                return not self.resolve(arg[0])
            if key == "Fn::And":
                return all(self.resolve(a) for a in arg)
            if key == "Fn::Or":
                return any(self.resolve(a) for a in arg)
            if key == "Condition":
                return self.condition(arg)
            if key == "Fn::FindInMap":
                name, first, second = (self.resolve(a) for a in arg)
                return self.template["Mappings"][name][first][second]
            if key.startswith("Fn::"):
                raise DeployError(f"intrinsic {key} is not modelled")
        return {k: self.resolve(v) for k, v in value.items() if not _is_no_value(v)}

    def sub(self, text: str, variables: Mapping[str, Any]) -> str:
        def one(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in variables:
                return str(variables[name])
            if "." in name and name not in self.pseudo:
                logical_id, attribute = name.split(".", 1)
                return self.get_att(logical_id, attribute)
            return self.ref(name)

        return _SUB.sub(one, text).replace("${!", "${")

    # -- Lambda -------------------------------------------------------------------------------------

    def _lambda_function(self, logical_id: str, props: Mapping[str, Any]) -> None:
        name = str(props.get("FunctionName") or _physical_name(self.out.stack, logical_id, 64))
        arn = self.world.create_function(name)
        self.out.functions[logical_id] = name
        self.out.refs[logical_id] = name
        self.out.attributes[(logical_id, "Arn")] = arn

    def _lambda_version(self, logical_id: str, props: Mapping[str, Any]) -> None:
        published = self.world.client("lambda").publish_version(FunctionName=props["FunctionName"])
        self.out.refs[logical_id] = published["FunctionArn"]
        self.out.attributes[(logical_id, "Version")] = published["Version"]

    def _lambda_alias(self, logical_id: str, props: Mapping[str, Any]) -> None:
        created = self.world.client("lambda").create_alias(
            FunctionName=props["FunctionName"], Name=props["Name"], FunctionVersion=props["FunctionVersion"]
        )
        function = _function_and_qualifier(str(props["FunctionName"]))[0]
        self.out.aliases[logical_id] = (function, str(props["Name"]))
        self.out.refs[logical_id] = created["AliasArn"]

    def _lambda_permission(self, logical_id: str, props: Mapping[str, Any]) -> None:
        sid = _physical_name(self.out.stack, logical_id, 100)
        request = {
            "FunctionName": props["FunctionName"],
            "StatementId": sid,
            "Action": props["Action"],
            "Principal": props["Principal"],
        }
        for key in (
            "SourceArn",
            "SourceAccount",
            "EventSourceToken",
            "PrincipalOrgID",
            "FunctionUrlAuthType",
        ):
            if key in props:
                request[key] = props[key]
        self.world.client("lambda").add_permission(**request)
        function, qualifier = _function_and_qualifier(str(props["FunctionName"]))
        self.out.grants.append(
            Grant(logical_id, function, qualifier, sid, str(props["Principal"]), props.get("SourceArn"))
        )
        self.out.refs[logical_id] = sid

    # -- API Gateway --------------------------------------------------------------------------------

    @property
    def apigw(self) -> Any:
        return self.world.client("apigateway")

    def _apigateway_restapi(self, logical_id: str, props: Mapping[str, Any]) -> None:
        body = props.get("Body")
        title = (body or {}).get("info", {}).get("title") if isinstance(body, dict) else None
        name = str(props.get("Name") or title or logical_id)
        api_id = self.apigw.create_rest_api(name=name)["id"]
        root = next(r["id"] for r in self.apigw.get_resources(restApiId=api_id)["items"] if r["path"] == "/")
        self.out.apis[logical_id] = api_id
        self.out.refs[logical_id] = api_id
        self.out.attributes[(logical_id, "RootResourceId")] = root
        if "BodyS3Location" in props:
            self.without_body.add(api_id)
            self.out.notes.append(f"{logical_id}: BodyS3Location is not in the source repository; no routes")
        if isinstance(body, dict):
            _BodyImporter(self.apigw, api_id, root).run(body)

    def _apigateway_resource(self, logical_id: str, props: Mapping[str, Any]) -> None:
        created = self.apigw.create_resource(
            restApiId=props["RestApiId"], parentId=props["ParentId"], pathPart=props["PathPart"]
        )
        self.out.refs[logical_id] = created["id"]
        self.out.attributes[(logical_id, "ResourceId")] = created["id"]

    def _apigateway_method(self, logical_id: str, props: Mapping[str, Any]) -> None:
        api_id, resource_id, verb = props["RestApiId"], props["ResourceId"], props["HttpMethod"]
        optional = {"authorizerId": props.get("AuthorizerId"), "apiKeyRequired": props.get("ApiKeyRequired")}
        self.apigw.put_method(
            restApiId=api_id,
            resourceId=resource_id,
            httpMethod=verb,
            authorizationType=props.get("AuthorizationType", "NONE"),
            **{k: v for k, v in optional.items() if v is not None},
        )
        integration = props.get("Integration")
        if integration:
            _put_integration(
                self.apigw,
                api_id,
                resource_id,
                verb,
                integration["Type"],
                integration.get("IntegrationHttpMethod"),
                integration.get("Uri"),
                integration.get("Credentials"),
            )
        self.out.refs[logical_id] = f"{api_id}-{resource_id}-{verb}"

    def _apigateway_authorizer(self, logical_id: str, props: Mapping[str, Any]) -> None:
        created = _create_authorizer(
            self.apigw,
            str(props["RestApiId"]),
            str(props.get("Name") or logical_id),
            str(props["Type"]),
            uri=props.get("AuthorizerUri"),
            identity_source=props.get("IdentitySource"),
            provider_arns=props.get("ProviderARNs"),
            credentials=props.get("AuthorizerCredentials"),
            ttl=props.get("AuthorizerResultTtlInSeconds"),
        )
        self.out.refs[logical_id] = created

    def _undeployable(self, logical_id: str, props: Mapping[str, Any]) -> bool:
        """API Gateway refuses to deploy an API without methods: say so instead of failing."""
        if props["RestApiId"] not in self.without_body:
            return False
        self.placeholder(logical_id, str(self.resources[logical_id]["Type"]))
        self.out.notes.append(f"{logical_id}: not deployed, its API has no routes")
        return True

    def _apigateway_deployment(self, logical_id: str, props: Mapping[str, Any]) -> None:
        if self._undeployable(logical_id, props):
            return
        request = {"restApiId": props["RestApiId"], "description": str(props.get("Description", ""))}
        if props.get("StageName"):
            request["stageName"] = props["StageName"]
        if (props.get("StageDescription") or {}).get("Variables"):
            request["variables"] = props["StageDescription"]["Variables"]
        self.out.refs[logical_id] = self.apigw.create_deployment(**request)["id"]

    def _apigateway_stage(self, logical_id: str, props: Mapping[str, Any]) -> None:
        if self._undeployable(logical_id, props):
            return
        request = {
            "restApiId": props["RestApiId"],
            "stageName": props["StageName"],
            "deploymentId": props["DeploymentId"],
        }
        if props.get("Variables"):
            request["variables"] = {k: str(v) for k, v in props["Variables"].items()}
        self.apigw.create_stage(**request)
        self.out.refs[logical_id] = str(props["StageName"])


class _BodyImporter:
    """What API Gateway does with an OpenAPI/Swagger `Body`: authorizers, resources, methods, integrations."""

    def __init__(self, apigw: Any, api_id: str, root_id: str):
        self.apigw = apigw
        self.api_id = api_id
        self.paths: dict[str, str] = {"/": root_id}
        self.authorizers: dict[str, tuple[str, str]] = {}
        """security scheme name -> (authorizationType, authorizerId or "")."""

    def run(self, body: Mapping[str, Any]) -> None:
        schemes = (
            body.get("securityDefinitions") or (body.get("components") or {}).get("securitySchemes") or {}
        )
        for name, scheme in schemes.items():
            self.scheme(name, scheme)
        default_security = body.get("security")
        for path, item in sorted((body.get("paths") or {}).items()):
            resource_id = self.resource(path)
            for key, operation in item.items():
                if key.lower() not in HTTP_METHODS or not isinstance(operation, dict):
                    continue
                verb = "ANY" if key == "x-amazon-apigateway-any-method" else key.upper()
                self.method(resource_id, verb, operation, operation.get("security", default_security))

    def scheme(self, name: str, scheme: Mapping[str, Any]) -> None:
        authorizer = scheme.get("x-amazon-apigateway-authorizer")
        if scheme.get("x-amazon-apigateway-authtype") == "awsSigv4":
            self.authorizers[name] = ("AWS_IAM", "")
        elif authorizer:
            kind = str(authorizer["type"]).upper()
            identity = authorizer.get("identitySource")
            if identity is None and kind == "TOKEN" and scheme.get("in") == "header":
                identity = f"method.request.header.{scheme['name']}"
            authorizer_id = _create_authorizer(
                self.apigw,
                self.api_id,
                name,
                kind,
                uri=authorizer.get("authorizerUri"),
                identity_source=identity,
                provider_arns=authorizer.get("providerARNs"),
                credentials=authorizer.get("authorizerCredentials"),
                ttl=authorizer.get("authorizerResultTtlInSeconds"),
            )
            self.authorizers[name] = (
                "COGNITO_USER_POOLS" if kind == "COGNITO_USER_POOLS" else "CUSTOM",
                authorizer_id,
            )

    def resource(self, path: str) -> str:
        if path in self.paths:
            return self.paths[path]
        parent_path, _, part = path.rstrip("/").rpartition("/")
        parent = self.resource(parent_path or "/")
        created = self.apigw.create_resource(restApiId=self.api_id, parentId=parent, pathPart=part)
        self.paths[path] = created["id"]
        return str(created["id"])

    def method(self, resource_id: str, verb: str, operation: Mapping[str, Any], security: Any) -> None:
        authorization, authorizer_id = "NONE", ""
        for requirement in security or []:
            for name in requirement:
                if name in self.authorizers:
                    authorization, authorizer_id = self.authorizers[name]
                    break
        self.apigw.put_method(
            restApiId=self.api_id,
            resourceId=resource_id,
            httpMethod=verb,
            authorizationType=authorization,
            **({"authorizerId": authorizer_id} if authorizer_id else {}),
        )
        integration = operation.get("x-amazon-apigateway-integration")
        if integration:
            _put_integration(
                self.apigw,
                self.api_id,
                resource_id,
                verb,
                str(integration["type"]).upper(),
                integration.get("httpMethod"),
                integration.get("uri"),
                integration.get("credentials"),
            )


def _put_integration(
    apigw: Any,
    api_id: str,
    resource_id: str,
    verb: str,
    kind: str,
    http_method: str | None,
    uri: str | None,
    credentials: str | None,
) -> None:
    optional = {"integrationHttpMethod": http_method, "uri": uri, "credentials": credentials}
    apigw.put_integration(
        restApiId=api_id,
        resourceId=resource_id,
        httpMethod=verb,
        type=kind.upper(),
        **{k: str(v) for k, v in optional.items() if v is not None},
    )


def _create_authorizer(
    apigw: Any,
    api_id: str,
    name: str,
    kind: str,
    *,
    uri: Any,
    identity_source: Any,
    provider_arns: Any,
    credentials: Any,
    ttl: Any,
) -> str:
    optional = {
        "authorizerUri": uri,
        "identitySource": identity_source,
        "providerARNs": provider_arns,
        "authorizerCredentials": credentials,
        "authorizerResultTtlInSeconds": int(ttl) if ttl is not None else None,
    }
    created = apigw.create_authorizer(
        restApiId=api_id, name=name, type=kind.upper(), **{k: v for k, v in optional.items() if v is not None}
    )
    return str(created["id"])


def _physical_name(stack: str, logical_id: str, limit: int) -> str:
    """CloudFormation's `{stack}-{logical id}-{suffix}`, with a stable suffix and the name's length limit."""
    suffix = hashlib.sha256(f"{stack}/{logical_id}".encode()).hexdigest()[:12].upper()
    head = f"{stack}-{logical_id}"[: limit - len(suffix) - 1]
    return f"{head}-{suffix}"


def _function_and_qualifier(text: str) -> tuple[str, str | None]:
    """Function name and qualifier from what Lambda::Permission's FunctionName accepts."""
    parts = text.split(":")
    if text.startswith("arn:"):
        return parts[6], (parts[7] if len(parts) > 7 else None)
    return parts[0], (parts[1] if len(parts) > 1 else None)


def _references(value: Any) -> list[str]:
    """Logical ids a property value refers to (Ref, GetAtt, and `${...}` in Sub)."""
    found: list[str] = []
    if isinstance(value, list):
        for item in value:
            found += _references(item)
    elif isinstance(value, dict):
        for key, arg in value.items():
            if key == "Ref" and isinstance(arg, str):
                found.append(arg)
            elif key == "Fn::GetAtt":
                found.append(arg[0] if isinstance(arg, list) else str(arg).split(".", 1)[0])
            elif key == "Fn::Sub":
                text = arg if isinstance(arg, str) else arg[0]
                found += [m.split(".", 1)[0] for m in _SUB.findall(text)]
                found += _references(arg[1] if isinstance(arg, list) else None)
            else:
                found += _references(arg)
    return found


def _listed(value: Any) -> list[str]:
    return [value] if isinstance(value, str) else list(value)


def _is_no_value(value: Any) -> bool:
    return isinstance(value, dict) and value == {"Ref": "AWS::NoValue"}
