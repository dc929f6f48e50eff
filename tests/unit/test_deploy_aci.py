"""Azure Container Instances YAML: Azure's fields, secrets only as placeholders."""

from __future__ import annotations

import json
import stat
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from shipml.deploy import secrets
from shipml.deploy.image_facts import ImageFacts
from shipml.deploy.targets.aci import Options as AciOptions
from shipml.deploy.targets.aci import az_command, render, write
from shipml.deploy.validation import ManifestError
from shipml.errors import ShipmlError

SCHEMA = json.loads(
    (Path(__file__).parents[1] / "fixtures" / "aci" / "container-group.schema.json").read_text()
)
FACTS = ImageFacts("myreg.azurecr.io/iris:3", "iris", "3", 8000)
COMMAND = ["shipml", "deploy", "aci", FACTS.image]
FULL = AciOptions(
    resource_group="ml-rg",
    name="iris",
    location="westeurope",
    cpu=2.0,
    memory=3.5,
    dns_label="iris-demo",
    workers=2,
    api_keys=True,
    store="az://models",
    model="iris@production",
)


def group(text: str) -> dict[str, Any]:
    return dict(yaml.safe_load(text))


def environment(doc: dict[str, Any]) -> dict[str, dict[str, str]]:
    variables = doc["properties"]["containers"][0]["properties"]["environmentVariables"]
    return {item["name"]: item for item in variables}


@pytest.mark.parametrize(
    "options", [AciOptions(resource_group="rg", name="iris"), FULL], ids=["defaults", "everything"]
)
def test_yaml_has_the_fields_azure_documents(options: AciOptions) -> None:
    doc = group(render(FACTS, options, COMMAND))
    jsonschema.validate(doc, SCHEMA, cls=jsonschema.Draft202012Validator)
    assert doc["apiVersion"] == "2021-10-01"
    properties = doc["properties"]
    assert properties["osType"] == "Linux" and properties["restartPolicy"] == "Always"
    assert properties["ipAddress"]["ports"] == [{"port": 8000, "protocol": "TCP"}]
    container = properties["containers"][0]["properties"]
    assert container["ports"] == [{"port": 8000, "protocol": "TCP"}]
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
    assert container["resources"]["requests"] == {
        "cpu": options.cpu,
        "memoryInGB": options.memory,
    }


def test_the_schema_catches_a_mistake() -> None:
    """Negative control: a misspelt key or a missing required field fails validation."""
    doc = group(render(FACTS, FULL, COMMAND))
    doc["properties"]["containers"][0]["properties"]["enviromentVariables"] = []
    with pytest.raises(jsonschema.ValidationError, match="enviromentVariables"):
        jsonschema.validate(doc, SCHEMA)
    doc = group(render(FACTS, FULL, COMMAND))
    del doc["properties"]["osType"]
    with pytest.raises(jsonschema.ValidationError, match="osType"):
        jsonschema.validate(doc, SCHEMA)


def test_secrets_are_placeholders_never_values() -> None:
    text = render(FACTS, FULL, COMMAND)
    doc = group(text)
    env = environment(doc)
    assert env["SHIPML_API_KEYS"] == {
        "name": "SHIPML_API_KEYS",
        "secureValue": "${SHIPML_API_KEYS}",
    }
    connection = env["AZURE_STORAGE_CONNECTION_STRING"]
    assert connection["secureValue"] == "${AZURE_STORAGE_CONNECTION_STRING}"
    assert "value" not in connection
    assert env["SHIPML_STORE"]["value"] == "az://models"
    assert doc["properties"]["imageRegistryCredentials"] == [
        {
            "server": "myreg.azurecr.io",
            "username": "${SHIPML_REGISTRY_USERNAME}",
            "password": "${SHIPML_REGISTRY_PASSWORD}",
        }
    ]
    for item in env.values():
        if "secureValue" in item:
            assert secrets.PLACEHOLDER.fullmatch(item["secureValue"]), item
    assert secrets.placeholders(text) == [
        "SHIPML_API_KEYS",
        "AZURE_STORAGE_CONNECTION_STRING",
        "SHIPML_REGISTRY_USERNAME",
        "SHIPML_REGISTRY_PASSWORD",
    ]
    assert "do not give this file to az as it is" in text


def test_values_from_the_environment_never_reach_the_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    leaks = {
        "SHIPML_API_KEYS": "key-that-must-not-leak",
        "AZURE_STORAGE_CONNECTION_STRING": "AccountKey=conn-that-must-not-leak",
        "SHIPML_REGISTRY_PASSWORD": "password-that-must-not-leak",
        "SHIPML_REGISTRY_USERNAME": "user-that-must-not-leak",
    }
    for name, value in leaks.items():
        monkeypatch.setenv(name, value)
    out = tmp_path / "aci.yaml"
    lines = write(FACTS, FULL, out, COMMAND)
    text = out.read_text() + "\n".join(lines)
    assert not [value for value in leaks.values() if value in text]


def test_public_image_needs_no_registry_credentials() -> None:
    doc = group(render(ImageFacts("iris:3", "iris", "3", 8000), AciOptions("rg", "iris"), COMMAND))
    assert "imageRegistryCredentials" not in doc["properties"]
    forced = AciOptions("rg", "iris", registry_credentials=True)
    with pytest.raises(ManifestError, match="names no registry"):
        render(ImageFacts("iris:3", "iris", "3", 8000), forced, COMMAND)
    private = AciOptions("rg", "iris", registry_credentials=False)
    assert "imageRegistryCredentials" not in group(render(FACTS, private, COMMAND))["properties"]


@pytest.mark.parametrize(
    "value", ["plain", "with # hash", "colon: space", "it's", 'quo"te', "back\\slash", "{brace}"]
)
def test_fill_puts_any_value_in_safely(value: str) -> None:
    text = render(FACTS, AciOptions("rg", "iris", api_keys=True), COMMAND)
    env = {
        "SHIPML_API_KEYS": value,
        "SHIPML_REGISTRY_USERNAME": "u",
        "SHIPML_REGISTRY_PASSWORD": "p",
    }
    filled = group(secrets.fill(text, env))
    assert environment(filled)["SHIPML_API_KEYS"]["secureValue"] == value
    jsonschema.validate(filled, SCHEMA)


def test_fill_names_every_missing_variable_and_leaves_comments() -> None:
    text = render(FACTS, AciOptions("rg", "iris", api_keys=True), COMMAND)
    with pytest.raises(ManifestError, match="set SHIPML_API_KEYS, SHIPML_REGISTRY_PASSWORD in"):
        secrets.fill(text, {"SHIPML_REGISTRY_USERNAME": "u", "SHIPML_API_KEYS": ""})
    env = {"SHIPML_API_KEYS": "k", "SHIPML_REGISTRY_USERNAME": "u", "SHIPML_REGISTRY_PASSWORD": "p"}
    filled = secrets.fill(text, env)
    comments = [line for line in text.splitlines() if line.startswith("#")]
    assert [line for line in filled.splitlines() if line.startswith("#")] == comments


def test_filled_copy_is_private_and_removed(tmp_path: Path) -> None:
    source = tmp_path / "aci.yaml"
    source.write_text("secureValue: '${TOKEN}'\n")
    with secrets.filled_copy(source, {"TOKEN": "t0ken"}) as copy:
        assert copy.read_text() == "secureValue: 't0ken'\n"
        assert stat.S_IMODE(copy.stat().st_mode) == 0o600
    assert not copy.exists()
    with pytest.raises(RuntimeError), secrets.filled_copy(source, {"TOKEN": "t"}) as second:
        raise RuntimeError("az failed")
    assert not second.exists()
    assert source.read_text() == "secureValue: '${TOKEN}'\n"


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (AciOptions("rg", "Iris"), "container group name 'Iris' is not valid in Azure"),
        (AciOptions("rg", "a--b"), "single '-'"),
        (AciOptions("rg", "-iris"), "not at the start or end"),
        (AciOptions("rg", "x" * 64), "1 to 63"),
        (AciOptions("bad/group", "iris"), "resource group 'bad/group' is not a valid name"),
        (AciOptions("rg.", "iris"), "not ending with '.'"),
        (AciOptions("rg", "iris", cpu=0), "--cpu must be more than zero"),
        (AciOptions("rg", "iris", memory=-1), "--memory must be more than zero"),
        (AciOptions("rg", "iris", dns_label="X"), "--dns-label 'X' is not valid"),
        (AciOptions("rg", "iris", workers=0), "--workers must be at least 1"),
        (AciOptions("rg", "iris", store="/data/store", model="iris:1"), "local folder"),
        (AciOptions("rg", "iris", store="az://m"), "--store and --model go together"),
    ],
)
def test_bad_options_fail_with_a_clear_message(options: AciOptions, message: str) -> None:
    with pytest.raises(ShipmlError) as caught:
        render(FACTS, options, COMMAND)
    assert message in str(caught.value)


def test_refuses_to_overwrite_a_file_it_did_not_write(tmp_path: Path) -> None:
    out = tmp_path / "aci.yaml"
    out.write_text("name: hand-written\n")
    with pytest.raises(ManifestError, match="was not generated by shipml"):
        write(FACTS, AciOptions("rg", "iris"), out, COMMAND)
    assert out.read_text() == "name: hand-written\n"
    out.unlink()
    write(FACTS, AciOptions("rg", "iris"), out, COMMAND)
    write(FACTS, AciOptions("rg", "iris", cpu=2), out, COMMAND)  # its own file: rewritten
    assert (
        group(out.read_text())["properties"]["containers"][0]["properties"]["resources"][
            "requests"
        ]["cpu"]
        == 2
    )


def test_az_command() -> None:
    assert az_command("ml-rg", Path("/tmp/f.yaml")) == [
        "az",
        "container",
        "create",
        "--resource-group",
        "ml-rg",
        "--file",
        "/tmp/f.yaml",
    ]
