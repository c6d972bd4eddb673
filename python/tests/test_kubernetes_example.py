"""examples/kubernetes validates against Kubernetes' own schemas (strict)."""

from pathlib import Path

import pytest

kubernetes_validate = pytest.importorskip("kubernetes_validate")

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "kubernetes"


@pytest.mark.parametrize("name", ["deployment.yaml", "configmap.yaml"])
def test_manifest_is_valid(name):
    import yaml

    for document in yaml.safe_load_all((EXAMPLE / name).read_text()):
        kubernetes_validate.validate(document, "1.33.0", strict=True)


def test_the_bundle_is_mounted_as_a_folder_so_updates_arrive():
    import yaml

    deployment = yaml.safe_load((EXAMPLE / "deployment.yaml").read_text())
    for container in deployment["spec"]["template"]["spec"]["containers"]:
        mounts = [mount for mount in container["volumeMounts"] if mount["name"] == "bundle"]
        assert mounts and all("subPath" not in mount for mount in mounts), container["name"]
