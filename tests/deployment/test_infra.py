"""The Azure deployment as `azd up` reads it: azure.yaml, deployment/infra/main.bicep and its
modules, main.parameters.json. No Bicep CLI installs from the package registries, so the
templates are parsed with the tree-sitter Bicep grammar and checked for what a compiler
would refuse first (syntax, undeclared symbols, module parameters and outputs), then for
what this app needs: the resources, the least-privilege roles, the Cosmos DB layout the code
uses, and settings the app starts with."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiohttp import web

from bot.service import create_app
from bot.settings import Settings, load_settings
from tests.deployment import bicep

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "deployment" / "infra"
MAIN = INFRA / "main.bicep"
BICEP_FILES = sorted(INFRA.rglob("*.bicep"))

# Built-in role definitions (their ids are the same in every Azure tenant).
ACR_PULL = "7f951dda-4ed3-4680-a7ca-43fe172d538d"
OPENAI_USER = "5e0bd9bd-7b93-4f28-af87-19fc36ad61bd"
SPEECH_USER = "f2dc8367-1007-4938-bd23-fe263f013447"
KEY_VAULT_SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"
CONTRIBUTOR = "b24988ac-6180-42a0-ab88-20f7382dd24c"
OWNER = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
USER_ACCESS_ADMINISTRATOR = "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9"
# Cosmos DB's own (SQL) role: Built-in Data Contributor.
COSMOS_DATA_CONTRIBUTOR = "00000000-0000-0000-0000-000000000002"

# Environment variables the container app sets that are not Aftercare settings: read by
# azure-identity (which identity DefaultAzureCredential uses) and by Azure Monitor.
AZURE_SDK_VARIABLES = {"AZURE_CLIENT_ID", "APPLICATIONINSIGHTS_CONNECTION_STRING"}


@pytest.fixture(scope="module")
def parsed() -> dict[str, bicep.BicepFile]:
    return {str(path.relative_to(INFRA)): bicep.parse(path) for path in BICEP_FILES}


@pytest.fixture(scope="module")
def main(parsed: dict[str, bicep.BicepFile]) -> bicep.BicepFile:
    return parsed["main.bicep"]


@pytest.fixture(scope="module")
def azure_yaml() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "azure.yaml").read_text())
    return loaded


def module_file(main: bicep.BicepFile, symbol: str) -> bicep.BicepFile:
    return bicep.parse(INFRA / main.modules[symbol].path)


def resources_of_type(parsed: dict[str, bicep.BicepFile], kind: str) -> list[bicep.Resource]:
    return [r for f in parsed.values() for r in f.resources.values() if r.type == kind and not r.existing]


def app_settings(main: bicep.BicepFile) -> dict[str, tuple[str | None, str]]:
    """The container app's settings object in main.bicep: name -> (the value when it is a
    string literal, else None; the expression as written)."""
    values = bicep.object_literal(main.modules["app"].params["settings"])
    return {name: (bicep.string_value(node), bicep.text(node)) for name, node in values.items()}


# -- what a compiler checks first ---------------------------------------------------------------


@pytest.mark.parametrize("path", BICEP_FILES, ids=lambda p: str(p.relative_to(INFRA)))
def test_each_template_parses_and_reads_only_declared_symbols(path: Path) -> None:
    parsed = bicep.parse(path)
    assert parsed.syntax_errors() == []
    assert parsed.undeclared_identifiers() == []
    assert parsed.unused_symbols() == []


def test_every_module_is_called_with_exactly_the_parameters_it_declares(main: bicep.BicepFile) -> None:
    assert main.modules, "main.bicep calls no module"
    for symbol, module in main.modules.items():
        target = INFRA / module.path
        assert target.is_file(), f"module {symbol}: {module.path} does not exist"
        declared = bicep.parse(target).params
        unknown = set(module.params) - set(declared)
        missing = {name for name, p in declared.items() if not p.has_default} - set(module.params)
        assert not unknown, f"module {symbol} is given parameters it does not declare: {unknown}"
        assert not missing, f"module {symbol} is not given its required parameters: {missing}"


def test_every_module_output_read_exists(main: bicep.BicepFile) -> None:
    reads = main.module_output_reads()
    assert reads
    for symbol, output, line in reads:
        assert output in module_file(main, symbol).outputs, (
            f"main.bicep:{line}: {symbol} has no output {output}"
        )


def test_no_preview_api_versions(parsed: dict[str, bicep.BicepFile]) -> None:
    for name, f in parsed.items():
        for resource in f.resources.values():
            assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", resource.api_version), (name, resource.type)


# -- azd's conventions ----------------------------------------------------------------------


def test_azure_yaml_builds_the_dockerfile_from_the_repository_root(azure_yaml: dict[str, Any]) -> None:
    assert azure_yaml["infra"] == {"provider": "bicep", "path": "deployment/infra", "module": "main"}
    assert (ROOT / azure_yaml["infra"]["path"] / "main.bicep").is_file()
    [(name, service)] = azure_yaml["services"].items()
    assert name == "aftercare"
    assert service["host"] == "containerapp"
    assert service["language"] == "docker"
    assert service["project"] == "."
    assert service["docker"] == {"path": "deployment/Dockerfile", "context": "."}
    assert (ROOT / service["docker"]["path"]).is_file()


def test_the_hooks_azure_yaml_names_exist(azure_yaml: dict[str, Any]) -> None:
    assert set(azure_yaml["hooks"]) == {"preprovision", "postdeploy"}
    for hook in azure_yaml["hooks"].values():
        assert hook["posix"]["shell"] == "sh" and hook["windows"]["shell"] == "pwsh"
        for platform in ("posix", "windows"):
            assert (ROOT / hook[platform]["run"]).is_file(), hook[platform]["run"]


def test_the_container_app_carries_the_azd_service_tag(
    main: bicep.BicepFile, azure_yaml: dict[str, Any]
) -> None:
    [service] = azure_yaml["services"]
    tags = bicep.text(main.modules["app"].params["tags"])
    assert tags == "union(tags, { 'azd-service-name': serviceName })"
    assert re.search(rf"^var serviceName = '{service}'$", main.text, re.MULTILINE)
    # azd's name for "the app exists, keep its image" follows the service's name.
    parameters = json.loads((INFRA / "main.parameters.json").read_text())["parameters"]
    assert parameters["appExists"]["value"] == f"${{SERVICE_{service.upper()}_RESOURCE_EXISTS=false}}"
    assert f"SERVICE_{service.upper()}_NAME" in main.outputs


def test_main_is_subscription_scoped_and_names_its_resource_group_for_azd(main: bicep.BicepFile) -> None:
    assert "targetScope = 'subscription'" in main.text
    group = main.resources["group"]
    assert group.type == "Microsoft.Resources/resourceGroups"
    assert "'azd-env-name': environmentName" in main.text
    for required in ("AZURE_CONTAINER_REGISTRY_ENDPOINT", "AZURE_LOCATION", "AZURE_TENANT_ID"):
        assert required in main.outputs


def test_the_parameters_file_sets_every_parameter_from_azd(main: bicep.BicepFile) -> None:
    document = json.loads((INFRA / "main.parameters.json").read_text())
    assert document["$schema"].endswith("/deploymentParameters.json#")
    parameters = {name: entry["value"] for name, entry in document["parameters"].items()}
    assert set(parameters) <= set(main.params), set(parameters) - set(main.params)
    required = {name for name, p in main.params.items() if not p.has_default}
    assert required <= set(parameters), required - set(parameters)
    assert parameters["environmentName"] == "${AZURE_ENV_NAME}"
    assert parameters["location"] == "${AZURE_LOCATION}"
    assert parameters["principalId"] == "${AZURE_PRINCIPAL_ID}"
    for name, value in parameters.items():
        assert re.fullmatch(r"\$\{[A-Z][A-Z0-9_]*(=[^}]*)?\}", value), (
            f"{name}: {value!r} is no azd substitution"
        )


def test_secrets_are_secure_parameters_never_outputs(main: bicep.BicepFile) -> None:
    for name in ("acsWebhookSecret", "directLineSecret"):
        assert "secure" in main.params[name].decorators
        assert not any(
            name in bicep.text(node) for node in main.root.children if node.type == "output_declaration"
        )
    assert not [
        o for o in main.outputs if re.search("SECRET|KEY|PASSWORD", o) and o != "AZURE_KEY_VAULT_NAME"
    ]


# -- what the app needs ---------------------------------------------------------------------------


def test_every_resource_the_app_uses_is_created(parsed: dict[str, bicep.BicepFile]) -> None:
    created = {r.type for f in parsed.values() for r in f.resources.values() if not r.existing}
    assert {
        "Microsoft.Resources/resourceGroups",
        "Microsoft.ManagedIdentity/userAssignedIdentities",
        "Microsoft.OperationalInsights/workspaces",
        "Microsoft.Insights/components",
        "Microsoft.ContainerRegistry/registries",
        "Microsoft.App/managedEnvironments",
        "Microsoft.App/containerApps",
        "Microsoft.BotService/botServices",
        "Microsoft.BotService/botServices/channels",
        "Microsoft.DocumentDB/databaseAccounts",
        "Microsoft.DocumentDB/databaseAccounts/sqlDatabases",
        "Microsoft.DocumentDB/databaseAccounts/sqlDatabases/containers",
        "Microsoft.DocumentDB/databaseAccounts/sqlRoleAssignments",
        "Microsoft.CognitiveServices/accounts",
        "Microsoft.CognitiveServices/accounts/deployments",
        "Microsoft.Communication/communicationServices",
        "Microsoft.EventGrid/systemTopics",
        "Microsoft.EventGrid/systemTopics/eventSubscriptions",
        "Microsoft.KeyVault/vaults",
        "Microsoft.KeyVault/vaults/secrets",
        "Microsoft.Authorization/roleAssignments",
    } <= created


def test_the_bot_is_the_managed_identity_on_teams_and_direct_line(parsed: dict[str, bicep.BicepFile]) -> None:
    bot_file = parsed["modules/bot.bicep"]
    properties = bicep.object_literal(bicep.object_literal(_body(bot_file.resources["bot"]))["properties"])
    assert bicep.string_value(properties["msaAppType"]) == "UserAssignedMSI"
    assert bicep.text(properties["msaAppId"]) == "identityClientId"
    assert bicep.text(properties["msaAppMSIResourceId"]) == "identityId"
    assert bicep.text(properties["msaAppTenantId"]) == "tenant().tenantId"
    channels = {
        bicep.string_value(bicep.object_literal(_body(r))["name"])
        for r in resources_of_type(parsed, "Microsoft.BotService/botServices/channels")
    }
    assert channels == {"MsTeamsChannel", "DirectLineChannel"}


def test_ai_services_sign_in_with_entra_id_only(parsed: dict[str, bicep.BicepFile]) -> None:
    kinds = {}
    for account in resources_of_type(parsed, "Microsoft.CognitiveServices/accounts"):
        body = bicep.object_literal(_body(account))
        properties = bicep.object_literal(body["properties"])
        kinds[bicep.string_value(body["kind"])] = properties
        assert bicep.text(properties["disableLocalAuth"]) == "true"
        # Entra ID tokens need the account's own subdomain.
        assert bicep.text(properties["customSubDomainName"]) == "name"
    assert set(kinds) == {"OpenAI", "SpeechServices"}
    deployments = resources_of_type(parsed, "Microsoft.CognitiveServices/accounts/deployments")
    assert {d.symbol for d in deployments} == {"chat", "embedding"}


def test_cosmos_db_is_serverless_without_keys(parsed: dict[str, bicep.BicepFile]) -> None:
    [account] = resources_of_type(parsed, "Microsoft.DocumentDB/databaseAccounts")
    properties = bicep.object_literal(bicep.object_literal(_body(account))["properties"])
    assert "EnableServerless" in bicep.text(properties["capabilities"])
    assert bicep.text(properties["disableLocalAuth"]) == "true"


def cosmos_container_specs(parsed: dict[str, bicep.BicepFile]) -> dict[str, dict[str, Any]]:
    cosmos = parsed["modules/cosmos.bicep"].text
    specs = re.findall(r"\{ name: '(\w+)', unindexed: '([^']+)', ttl: (true|false) \}", cosmos)
    return {name: {"unindexed": path, "ttl": ttl == "true"} for name, path, ttl in specs}


def test_cosmos_containers_partitioned_by_id_and_state_has_ttl_on(parsed: dict[str, bicep.BicepFile]) -> None:
    specs = cosmos_container_specs(parsed)
    assert set(specs) == {"users", "orders", "products", "lookups", "state"}
    assert [name for name, spec in specs.items() if spec["ttl"]] == ["state"]
    cosmos = parsed["modules/cosmos.bicep"].text
    assert "partitionKey: { paths: ['/id'], kind: 'Hash', version: 2 }" in cosmos
    assert "spec.ttl ? { defaultTtl: -1 } : {}" in cosmos


async def test_cosmos_containers_match_what_the_app_would_create(
    parsed: dict[str, bicep.BicepFile], cosmos_endpoint: str
) -> None:
    """One layout in two places: the app creates it on a store it owns (the Cosmos DB test
    server), the Bicep creates it in Azure. Partition keys and index exclusions must agree."""
    import uuid

    from shop.store.cosmos import CosmosStore
    from tests.support.cosmos import TEST_KEY

    specs = cosmos_container_specs(parsed)
    store = await CosmosStore.open(
        endpoint=cosmos_endpoint, key=TEST_KEY, database=f"layout-{uuid.uuid4().hex[:8]}", verify_tls=False
    )
    try:
        created = {name: await container.read() for name, container in store._containers.items()}
    finally:
        await store.aclose()
    assert set(created) == set(specs)
    for name, properties in created.items():
        assert properties["partitionKey"]["paths"] == ["/id"], name
        assert properties["partitionKey"].get("version", 2) == 2, name
        excluded = [p["path"] for p in properties["indexingPolicy"]["excludedPaths"]]
        assert excluded == [specs[name]["unindexed"], '/"_etag"/?'], name
        if "defaultTtl" in properties:
            assert properties["defaultTtl"] == -1 and specs[name]["ttl"], name


def test_the_identity_holds_only_data_plane_roles_on_single_resources(
    parsed: dict[str, bicep.BicepFile],
) -> None:
    granted = set().union(*(f.role_definition_ids() for f in parsed.values()))
    assert granted == {
        ACR_PULL,
        OPENAI_USER,
        SPEECH_USER,
        KEY_VAULT_SECRETS_USER,
        CONTRIBUTOR,
        COSMOS_DATA_CONTRIBUTOR,
    }
    assert OWNER not in granted and USER_ACCESS_ADMINISTRATOR not in granted
    # Contributor is the one control-plane role: ACS Call Automation has no narrower one.
    # It is scoped to the Communication Services resource alone.
    holders = [name for name, f in parsed.items() if CONTRIBUTOR in f.role_definition_ids()]
    assert holders == ["modules/communication.bicep"]
    for f in parsed.values():
        for assignment in (
            r for r in f.resources.values() if r.type == "Microsoft.Authorization/roleAssignments"
        ):
            body = bicep.object_literal(_body(assignment))
            scope = bicep.text(body["scope"])
            assert scope in f.resources and f.resources[scope].type != "Microsoft.Resources/resourceGroups", (
                f"{f.path.name}: {assignment.symbol} is scoped to {scope}, not to one resource"
            )
            properties = bicep.object_literal(body["properties"])
            assert bicep.string_value(properties["principalType"]) == "ServicePrincipal"
    cosmos = parsed["modules/cosmos.bicep"]
    for symbol in ("appData", "userData"):
        assert cosmos.resources[symbol].type == "Microsoft.DocumentDB/databaseAccounts/sqlRoleAssignments"
    assert f"var dataContributorRole = '{COSMOS_DATA_CONTRIBUTOR}'" in cosmos.text


def test_the_incoming_call_subscription_posts_to_the_webhook_with_its_secret(
    parsed: dict[str, bicep.BicepFile], main: bicep.BicepFile
) -> None:
    webhook = bicep.text(main.modules["communication"].params["incomingCallWebhook"])
    assert webhook == "'${publicUrl}/api/calls/incoming?secret=${acsWebhookSecret}'"
    communication = parsed["modules/communication.bicep"]
    subscription = communication.resources["incomingCalls"]
    assert "if (incomingCallSubscription)" in bicep.text(subscription.node)
    assert "includedEventTypes: ['Microsoft.Communication.IncomingCall']" in bicep.text(subscription.node)
    assert "topicType: 'Microsoft.Communication.CommunicationServices'" in communication.text
    assert "secure" in communication.params["incomingCallWebhook"].decorators


def placeholder(name: str, literal: str | None) -> str:
    """The literal, or a value of the right shape for a setting Azure fills in at deployment."""
    if literal is not None:
        return literal
    if name.endswith(("ENDPOINT", "_URL")):
        return "https://example.invalid"
    if name.endswith("RESOURCE_ID"):
        return "/subscriptions/0/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/speech"
    if name.endswith(("AppId", "TenantId", "CLIENT_ID")):
        return "00000000-0000-0000-0000-000000000001"
    if name in {"SEED_ON_START"}:
        return "true"
    if name == "RETENTION_DAYS":
        return "90"
    return "placeholder"


def test_the_container_app_sets_only_known_settings_and_they_start_the_app(
    main: bicep.BicepFile, parsed: dict[str, bicep.BicepFile], tmp_path: Path
) -> None:
    settings = app_settings(main)
    app_module = parsed["modules/containerapp.bicep"].text
    secret_refs = set(re.findall(r"\{ name: '(\w+)', secretRef: '[\w-]+' \}", app_module))
    assert secret_refs == {"ACS_WEBHOOK_SECRET", "DIRECT_LINE_SECRET"}
    aliases = {field.alias for field in Settings.model_fields.values()}
    unknown = (set(settings) | secret_refs) - aliases - AZURE_SDK_VARIABLES
    assert not unknown, f"the container app sets variables Aftercare does not read: {unknown}"
    for literal, expected in {
        "MicrosoftAppType": "UserAssignedMSI",
        "STORE": "cosmos",
        "COSMOS_CREATE_CONTAINERS": "false",
        "LLM_PROVIDER": "azure",
        "EMBEDDINGS_PROVIDER": "azure",
        "SPEECH_PROVIDER": "azure",
        "TRUSTED_PROXY_HOPS": "1",
    }.items():
        assert settings[literal][0] == expected, literal
    assert settings["PUBLIC_URL"][1] == "publicUrl"
    assert settings["MicrosoftAppId"][1] == settings["AZURE_CLIENT_ID"][1] == "identity.outputs.clientId"
    values = {
        name: placeholder(name, literal)
        for name, (literal, _) in settings.items()
        if name not in AZURE_SDK_VARIABLES
    }
    values |= {name: "a" * 64 for name in secret_refs}
    # The same start-up validation the app runs: every combination the settings need.
    loaded = load_settings(_env_file=None, **values)
    assert loaded.store == "cosmos" and loaded.acs_endpoint and loaded.public_url
    assert not loaded.anonymous


def test_the_routes_azure_calls_exist(settings: Settings) -> None:
    app: web.Application = create_app(settings)
    paths = {route.resource.canonical for route in app.router.routes() if route.resource is not None}
    assert {"/api/messages", "/api/calls/incoming", "/api/voice", "/healthz", "/readyz"} <= paths
    containerapp = (INFRA / "modules" / "containerapp.bicep").read_text()
    assert re.findall(r"path: '(/\w+)'", containerapp) == ["/healthz", "/healthz", "/readyz"]


def _body(resource: bicep.Resource) -> Any:
    """The object a resource declaration assigns (inside `if (...)` or a `for` too)."""
    node = resource.node.children[-1]
    if node.type == "if_statement":
        node = node.children[-1]
    if node.type == "for_statement":
        node = next(child for child in node.children if child.type == "object")
    return node
